//! The last block of an image that ends exactly where the device ends.
//!
//! A card's capacity is a multiple of its logical block size (512) but often
//! not of the 4096 bytes the engine pads its transfers to: an exact-size dump
//! written back to the same card must not pad past the end of the device.
//! Needs root for a loop device; skipped otherwise.
#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::io::Write;
use std::path::Path;

use graver_drives::{Access, open_target};
use graver_image::Image;
use graver_testkit::{LoopDevice, Rng, is_root, scratch};
use graver_writer::{CancelToken, Device, WriteOptions, compare, write};

const MIB: u64 = 1 << 20;
/// A capacity that is a whole number of 512-byte sectors but not of 4096-byte blocks.
const CAPACITY: u64 = 48 * MIB + 512;

fn image_of(dir: &Path, len: u64, seed: u64) -> Image {
    let path = dir.join(format!("exact-{len}.img"));
    let mut file = File::create(&path).unwrap();
    file.write_all(&Rng::new(seed).bytes(usize::try_from(len).unwrap()))
        .unwrap();
    drop(file);
    Image::open(&path).unwrap()
}

#[test]
fn an_image_as_large_as_a_device_of_512_byte_sectors_is_written_and_verified() {
    if !is_root() {
        eprintln!("skipped: needs root for loop devices");
        return;
    }
    let dir = scratch();
    let lo = LoopDevice::new(CAPACITY);
    let mut target = open_target(&lo.dev, Access::Write { overwrite_file: false }).unwrap();
    assert_eq!(
        target.capacity(),
        Some(CAPACITY),
        "the loop device has the backing file's size"
    );
    assert_ne!(
        CAPACITY % target.block_size() as u64,
        0,
        "the capacity must not be a whole block"
    );

    // The old contents' last sector (where a backup GPT header lives) is wiped too,
    // although it is not a whole 4096-byte block: a small image never reaches it.
    {
        use std::io::{Seek, SeekFrom};
        let mut backing = File::options().write(true).open(&lo.backing).unwrap();
        backing.seek(SeekFrom::Start(CAPACITY - 512)).unwrap();
        backing.write_all(&[0xEF; 512]).unwrap();
        backing.sync_all().unwrap();
        let small = image_of(dir.path(), 3 * MIB + 5, 6);
        let report = write(
            &small,
            &mut [&mut target as &mut dyn Device],
            WriteOptions::default(),
            &|_| {},
            &CancelToken::new(),
        )
        .unwrap();
        assert!(
            matches!(report.devices[0].result, Ok(true)),
            "{:?}",
            report.devices[0].result
        );
        let got = lo.read(usize::try_from(CAPACITY).unwrap());
        assert!(
            got[usize::try_from(CAPACITY - 512).unwrap()..].iter().all(|&b| b == 0),
            "the device's last sector was not wiped"
        );
    }

    // Exactly the device's size, and a size whose last sector is partly image, partly padding.
    for (len, seed) in [(CAPACITY, 7), (CAPACITY - 100, 8)] {
        let image = image_of(dir.path(), len, seed);
        let report = write(
            &image,
            &mut [&mut target as &mut dyn Device],
            WriteOptions::default(),
            &|_| {},
            &CancelToken::new(),
        )
        .unwrap();
        assert_eq!(report.image_len, len);
        assert!(
            matches!(report.devices[0].result, Ok(true)),
            "{len}: {:?}",
            report.devices[0].result
        );
        let compared = compare(&image, &mut target, &|_| {}, &CancelToken::new()).unwrap();
        assert_eq!(compared.image_len, len);

        let want = std::fs::read(image.path()).unwrap();
        let got = lo.read(usize::try_from(CAPACITY).unwrap());
        assert!(
            got[..want.len()] == want[..],
            "{len}: the device does not hold the image"
        );
        assert!(
            got[want.len()..].iter().all(|&b| b == 0),
            "{len}: the padding is not zeros"
        );
    }
}
