//! Examples of embedding danm-rs: run them with `cargo run -p danm-examples --example NAME`.
