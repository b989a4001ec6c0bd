//! `graver list`: the drives, with their flags.

use serde::Serialize;

use super::fail;
use crate::cli::ListArgs;
use crate::exit::Exit;
use crate::output::json_line;

#[derive(Serialize)]
struct ListedDrive<'a> {
    #[serde(flatten)]
    drive: &'a graver_drives::Drive,
    flags: Vec<graver_drives::Finding>,
}

#[derive(Serialize)]
struct ListLine<'a> {
    drives: Vec<ListedDrive<'a>>,
}

/// `graver list`.
pub fn list(args: &ListArgs) -> Exit {
    let drives = match graver_drives::list() {
        Ok(drives) => drives,
        Err(e) => return fail(args.json, Exit::from(&e), &e.to_string()),
    };
    let shown: Vec<ListedDrive<'_>> = drives
        .iter()
        .filter(|d| args.all || graver_drives::is_flashable(d))
        .map(|drive| ListedDrive {
            drive,
            flags: graver_drives::classify(drive, None),
        })
        .collect();
    if args.json {
        json_line(&ListLine { drives: shown });
        return Exit::Success;
    }
    if shown.is_empty() {
        println!("No removable drives found. Plug in a USB stick or SD card, or use --all to see every drive.");
        return Exit::Success;
    }
    println!("{:<16} {:>9}  {:<8} {:<32} FLAGS", "DRIVE", "SIZE", "BUS", "MODEL");
    for listed in &shown {
        let d = listed.drive;
        let flags: Vec<&str> = listed.flags.iter().map(|n| n.hazard.badge()).collect();
        println!(
            "{:<16} {:>9}  {:<8} {:<32} {}",
            d.path.display(),
            graver_image::human::decimal(d.size),
            d.bus.label(),
            d.display_name(),
            flags.join(", ")
        );
        for part in &d.partitions {
            let mounts: Vec<String> = part.mount_points.iter().map(|m| m.display().to_string()).collect();
            let mounted = if mounts.is_empty() {
                String::new()
            } else {
                format!("  mounted at {}", mounts.join(", "))
            };
            let swap = if part.swap { "  swap" } else { "" };
            println!(
                "  {:<14} {:>9}{mounted}{swap}",
                part.path.display(),
                graver_image::human::decimal(part.size)
            );
        }
        for note in &listed.flags {
            println!("  ! {}", note.message);
        }
    }
    if !args.all {
        println!("(system drives, fixed disks and loop devices are hidden; --all shows them)");
    }
    Exit::Success
}
