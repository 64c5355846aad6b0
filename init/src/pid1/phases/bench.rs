//! Phase benchmark: the hook where the hardware benchmark runs as a supervised child when
//! /data/bench has no result for this hardware. The benchmark itself comes with its issue;
//! until then this phase only says so.

use anyhow::Result;
use tracing::info;

use crate::pid1::Boot;

pub fn run(_boot: &mut Boot) -> Result<()> {
    info!("benchmark: not part of this build yet");
    Ok(())
}
