//! Re-embed the migrations when only an SQL file changed.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
