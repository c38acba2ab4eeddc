use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = kuul::cli::Cli::parse();
    kuul::commands::init_logging();
    match kuul::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            kuul::commands::print_error(&error);
            ExitCode::FAILURE
        }
    }
}
