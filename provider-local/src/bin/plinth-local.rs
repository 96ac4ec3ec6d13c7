//! The provider-local helper: `plinth-local daemon <state-dir>` runs the daemon of a
//! state directory; `plinth-local instance <dir>` runs one instance. Both are started
//! by the library, not by hand.

fn main() -> std::process::ExitCode {
    provider_local::helper::main(std::env::args_os().skip(1).collect())
}
