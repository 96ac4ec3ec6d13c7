//! `plinth-bench [seed|medium|rate|replace|plan|lb]...`: runs the benchmark (every part
//! when none is named) and prints one table on stdout; progress goes to stderr.

use std::process::ExitCode;
use std::time::Instant;

use bench::suite::{self, Part};

#[global_allocator]
static ALLOC: bench::alloc::Counting = bench::alloc::Counting;

fn main() -> ExitCode {
    // provider-local starts its daemon and instances as this program.
    provider_local::helper::run_if_requested();
    let mut parts = Vec::new();
    for arg in std::env::args().skip(1) {
        match Part::parse(&arg) {
            Some(p) => parts.push(p),
            None => {
                let names: Vec<&str> = Part::ALL.iter().map(|p| p.name()).collect();
                eprintln!(
                    "plinth-bench: unknown part {arg:?}: name any of {} (none runs all)",
                    names.join(", ")
                );
                return ExitCode::from(2);
            }
        }
    }
    if parts.is_empty() {
        parts = Part::ALL.to_vec();
    }
    match run(&parts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plinth-bench: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn run(parts: &[Part]) -> Result<(), bench::Error> {
    let start = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| bench::Error::Io {
            scenario: "start".into(),
            what: "starting the runtime".into(),
            source,
        })?;
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let c = suite::COSTS;
    println!(
        "plinth-bench, {build} build. Simulated cloud: {} ms a call, {} ms an instance boot, {} ms drain; rate limit {}/s with bursts of {}; executor defaults (concurrency 8, batches of 25).\n",
        c.latency.as_millis(),
        c.boot.as_millis(),
        c.drain.as_millis(),
        suite::RATE.rate,
        suite::RATE.burst
    );
    let table = rt.block_on(suite::run(parts, |row| {
        eprintln!(
            "[{:6.1} s] {}: {} (limit {})",
            start.elapsed().as_secs_f64(),
            row.scenario,
            row.measured,
            row.limit
        );
    }))?;
    print!("{table}");
    println!("\ntotal {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
