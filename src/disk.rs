//! Disk watermarks for admission control (SPEC §7): above the high watermark new recordings
//! get 503 until usage drops below the low one.

use crate::telemetry::Telemetry;
use std::path::Path;
use std::sync::atomic::Ordering;

/// `(used percent, free bytes)` of the file system holding `path`.
pub fn usage(path: &Path) -> std::io::Result<(u8, u64)> {
    let st = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    let block = st.fragment_size();
    let total = st.blocks().saturating_mul(block);
    let free = st.blocks_available().saturating_mul(block);
    let used_percent = free
        .saturating_mul(100)
        .checked_div(total)
        .map_or(0, |free_percent| 100 - free_percent.min(100));
    Ok((u8::try_from(used_percent).unwrap_or(100), free))
}

/// Hysteresis between the watermarks. Returns the new "full" state.
pub fn next_full_state(currently_full: bool, used_percent: u8, high: u8, low: u8) -> bool {
    if currently_full {
        used_percent >= low
    } else {
        used_percent >= high
    }
}

/// Check the disk once and update the telemetry; returns whether new recordings must wait.
pub fn check(path: &Path, telemetry: &Telemetry, high: u8, low: u8) -> bool {
    let was_full = telemetry.disk_full.load(Ordering::Relaxed);
    let Ok((used, free)) = usage(path) else {
        return was_full;
    };
    telemetry
        .disk_used_percent
        .store(u64::from(used), Ordering::Relaxed);
    telemetry.disk_free_bytes.store(free, Ordering::Relaxed);
    let full = next_full_state(was_full, used, high, low);
    if full != was_full {
        if full {
            tracing::warn!(
                used_percent = used,
                high,
                "recordings disk above its high watermark: refusing new recordings"
            );
        } else {
            tracing::info!(
                used_percent = used,
                low,
                "recordings disk below its low watermark: taking recordings again"
            );
        }
        telemetry.disk_full.store(full, Ordering::Relaxed);
    }
    full
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hysteresis_between_watermarks() {
        assert!(!next_full_state(false, 94, 95, 90));
        assert!(next_full_state(false, 95, 95, 90));
        assert!(
            next_full_state(true, 92, 95, 90),
            "stays full until below low"
        );
        assert!(!next_full_state(true, 89, 95, 90));
    }

    #[test]
    fn usage_of_a_real_file_system() {
        let (used, free) = usage(Path::new("/")).unwrap();
        assert!(used <= 100);
        assert!(free > 0);
    }
}
