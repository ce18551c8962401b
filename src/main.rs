//! The `pollen` command line (layer 3): parse arguments, run one command,
//! map its error to one line on stderr and an exit status (0 done, 1 runtime
//! failure, 2 bad input).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match cli::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if error.is_error() {
                eprintln!("error: {error}");
            } else {
                eprintln!("{error}");
            }
            ExitCode::from(error.exit_code())
        }
    }
}
