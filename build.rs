//! `sqlx::migrate!` embeds `migrations/` at compile time: a new or edited migration file must
//! rebuild the crate, or the binary would silently keep the old set.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
