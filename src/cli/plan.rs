//! `sensei plan FILE`: placeholder.
#[derive(Debug, clap::Args)]
pub struct Args {}
pub fn run(_: &Args) -> u8 { 0 }
