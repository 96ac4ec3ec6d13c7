//! The helper processes' entry point, shared by the `plinth-local` executable and by
//! any program that hosts the helper itself (so `cargo run -p cluster` works without
//! building `plinth-local` separately).
//!
//! A hosting program calls [`run_if_requested`] first thing in `main`; from then on
//! the library starts daemons and instances as `<that program> __plinth-local ...`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

/// Call first thing in `main` of a program embedding provider-local. When this
/// process was started as a helper (`<program> __plinth-local daemon|instance <dir>`)
/// it runs the helper and exits; otherwise it returns at once, and the library will
/// use this program as its helper.
pub fn run_if_requested() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() == Some(std::ffi::OsStr::new(crate::locate::HOSTED_MARKER)) {
        let code = main(args.collect());
        std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 });
    }
    crate::locate::mark_hosted();
}

fn usage() -> ExitCode {
    eprintln!("usage: plinth-local daemon <state-dir> | plinth-local instance <instance-dir>");
    ExitCode::from(2)
}

/// Runs a helper: `daemon <state-dir>` or `instance <instance-dir>` (logs to stderr,
/// filtered by `PLINTH_LOCAL_LOG`, default `info`).
pub fn main(args: Vec<OsString>) -> ExitCode {
    // Ignore a second init (a host that set up its own subscriber).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PLINTH_LOCAL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let mut args = args.into_iter();
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
            rt.block_on(crate::daemon::run(dir))
                .map_err(|e| e.to_string())
        }
        Some("instance") => rt
            .block_on(crate::image::run(&dir))
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
