//! The provider-local helper: `plinth-local daemon <state-dir>` runs the daemon of a
//! state directory; `plinth-local instance <dir>` runs one instance. Both are started
//! by the library, not by hand.

use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: plinth-local daemon <state-dir> | plinth-local instance <instance-dir>");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PLINTH_LOCAL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let mut args = std::env::args_os().skip(1);
    let (Some(cmd), Some(dir)) = (args.next(), args.next()) else {
        return usage();
    };
    let dir = PathBuf::from(dir);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("plinth-local: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cmd.to_str() {
        Some("daemon") => {
            // Our own session: a terminal's Ctrl-C or hang-up must not reach the
            // daemon, which outlives the command that started it.
            // SAFETY: setsid has no memory effects; it fails harmlessly if we already
            // lead a process group.
            unsafe {
                libc::setsid();
            }
            rt.block_on(provider_local::daemon::run(dir))
                .map_err(|e| e.to_string())
        }
        Some("instance") => rt
            .block_on(provider_local::image::run(&dir))
            .map_err(|e| e.to_string()),
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
