//! Byte counts as people read them, the one formatter both front ends and every
//! message use.

/// A size in binary units, as memory and images are measured: "1.5 GiB", "512 MiB",
/// "17 bytes". One decimal, dropped when it is zero.
pub fn binary(bytes: u64) -> String {
    let (value, unit) = scaled(bytes, 1024.0, &["KiB", "MiB", "GiB", "TiB", "PiB"]);
    let Some(unit) = unit else {
        return format!("{bytes} bytes");
    };
    let text = format!("{value:.1}");
    format!("{} {unit}", text.strip_suffix(".0").unwrap_or(&text))
}

/// A size in decimal units, as drive makers print it on the label: "16.0 GB", "512.0 MB".
pub fn decimal(bytes: u64) -> String {
    match scaled(bytes, 1000.0, &["kB", "MB", "GB", "TB", "PB"]) {
        (value, Some(unit)) => format!("{value:.1} {unit}"),
        (_, None) => format!("{bytes} bytes"),
    }
}

/// `bytes` divided by `base` until it is below `base` (or the units run out), with its
/// unit; no unit when it is below one `base`.
fn scaled(bytes: u64, base: f64, units: &[&'static str]) -> (f64, Option<&'static str>) {
    let mut value = bytes as f64;
    let mut unit = None;
    for &next in units {
        if value < base {
            break;
        }
        value /= base;
        unit = Some(next);
    }
    (value, unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_sizes_read_as_a_person_would() {
        assert_eq!(binary(3 << 29), "1.5 GiB");
        assert_eq!(binary(512 << 20), "512 MiB");
        assert_eq!(binary(100), "100 bytes");
        assert_eq!(binary(2 << 30), "2 GiB");
        // A count a little under a whole unit rounds to it.
        assert_eq!(binary((16 << 20) - 4096), "16 MiB");
        assert_eq!(binary(1536), "1.5 KiB");
        assert_eq!(binary(5 << 50), "5 PiB");
    }

    #[test]
    fn decimal_sizes_are_like_drive_labels() {
        assert_eq!(decimal(999), "999 bytes");
        assert_eq!(decimal(16_000_000_000), "16.0 GB");
        assert_eq!(decimal(1_500_000), "1.5 MB");
        assert_eq!(decimal(500_000_000_000), "500.0 GB");
    }
}
