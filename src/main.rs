//! The `cutout` executable: the headless CLI today; with no subcommand it will
//! open the desktop window once that lands.

fn main() -> std::process::ExitCode {
    cutout::cli::main()
}
