//! The ACPI power button as an input device: PID1 opens every `/dev/input/event*` that can
//! send KEY_POWER and watches it from the event loop (QEMU's `system_powerdown` presses it).

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

use tracing::{info, warn};

const EV_KEY: u16 = 1;
const KEY_POWER: u16 = 116;
/// `struct input_event` on 64-bit: a 16-byte timeval, type, code, value.
const EVENT_SIZE: usize = 24;

/// True when a sysfs `capabilities/key` bitmap (hex words, most significant first) has `code`.
pub fn has_key(bitmap: &str, code: u16) -> bool {
    let words: Vec<&str> = bitmap.split_whitespace().collect();
    let index = usize::from(code / 64);
    let Some(word) = words.len().checked_sub(index + 1).map(|i| words[i]) else {
        return false;
    };
    u64::from_str_radix(word, 16).is_ok_and(|bits| bits & (1 << (code % 64)) != 0)
}

/// Opens every input device that can send KEY_POWER, non-blocking.
pub fn open_all() -> Vec<File> {
    let Ok(entries) = fs::read_dir("/sys/class/input") else {
        return Vec::new();
    };
    let mut buttons = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("event") {
            continue;
        }
        let caps = fs::read_to_string(entry.path().join("device/capabilities/key"));
        if !caps.is_ok_and(|c| has_key(&c, KEY_POWER)) {
            continue;
        }
        let dev = format!("/dev/input/{name}");
        match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&dev)
        {
            Ok(f) => {
                info!("power button: {dev}");
                buttons.push(f);
            }
            Err(e) => warn!("power button {dev}: {e}"),
        }
    }
    buttons
}

/// Reads all pending events; true when one of them is a KEY_POWER press.
pub fn pressed(dev: &mut File) -> bool {
    let mut buf = [0u8; EVENT_SIZE * 16];
    let mut seen = false;
    while let Ok(n) = dev.read(&mut buf) {
        if n == 0 {
            break;
        }
        for ev in buf[..n].chunks_exact(EVENT_SIZE) {
            let kind = u16::from_ne_bytes([ev[16], ev[17]]);
            let code = u16::from_ne_bytes([ev[18], ev[19]]);
            let value = i32::from_ne_bytes([ev[20], ev[21], ev[22], ev[23]]);
            seen |= kind == EV_KEY && code == KEY_POWER && value == 1;
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acpi_power_button_bitmap_has_key_power() {
        // What the kernel shows for the ACPI "Power Button" device: only bit 116 set.
        assert!(has_key("10000000000000 0\n", KEY_POWER));
        assert!(!has_key("0\n", KEY_POWER));
        assert!(!has_key("", KEY_POWER));
        assert!(has_key("1", 0));
    }
}
