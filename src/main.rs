//! The `sensei` binary: parse arguments, run the command, exit with its code.

fn main() -> std::process::ExitCode {
    // A panic is a bug in sensei, never the user's fault: say so in one sentence, without a
    // backtrace (the migration's state is safe in the store; `sensei resume` continues it).
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: sensei hit an internal error{place}; this is a bug, please report it. Migrations are safe in the store: `sensei resume ID` continues one"
        );
    }));
    sensei::cli::main()
}
