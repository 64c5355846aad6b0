//! Phase update: which version runs and from which ESP entry, whether the loader fell back
//! from a failed version, and whether this boot is a trial to watch (see `pid1::update`).

use anyhow::Result;

use crate::pid1::update::Updates;
use crate::pid1::{Boot, DataState};

pub fn run(boot: &mut Boot) -> Result<()> {
    boot.updates = Updates::inspect(matches!(boot.data, DataState::Mounted { .. }));
    Ok(())
}
