fn main() {
    std::process::exit(slipway::cli::main());
}
