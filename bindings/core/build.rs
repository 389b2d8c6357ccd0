// Empty: the crate has a build script only so that its [build-dependencies] feature pin (syn
// "fold") takes part in host feature resolution; see Cargo.toml.
fn main() {}
