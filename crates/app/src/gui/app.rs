//! The window's state and how background events change it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use graver_client::{Client, Command, Event, Launch};
use graver_drives::{Consent, Drive, Finding, Identity, ImageFacts, Refusal, Verdict};
use graver_image::{ChecksumVerdict, Image, ImageDigests, PublishedChecksum};
use graver_writer::protocol::{JobResult, JobTarget, WriteJob};
use graver_writer::{ErrorKind, Progress};

use super::settings::{self, Settings};

/// Opens a file dialog and returns the chosen file; injected so tests never open one.
pub type Picker = Box<dyn FnMut() -> Option<PathBuf>>;

/// Everything the window uses from the outside world, replaceable in tests.
pub struct Services {
    /// The image file dialog.
    pub picker: Picker,
    /// How the writer worker is started.
    pub launch: Launch,
    /// Where settings live; `None` keeps them in memory only.
    pub settings_path: Option<PathBuf>,
    /// Watch the OS's drives (tests feed drives through [`GraverApp::set_drives`] instead).
    pub watch_drives: bool,
}

impl Services {
    /// The real thing: native dialog, elevated worker, settings file, drive watcher.
    pub fn real() -> Self {
        Self {
            picker: Box::new(|| {
                rfd::FileDialog::new()
                    .set_title("Choose a disk image")
                    .add_filter(
                        "Disk images and archives",
                        &["iso", "img", "raw", "dd", "wic", "bin", "gz", "bz2", "xz", "zst", "zip"],
                    )
                    .add_filter("All files", &["*"])
                    .pick_file()
            }),
            launch: Launch::Auto,
            settings_path: settings::default_path(),
            watch_drives: true,
        }
    }
}

/// What the background threads report.
pub(crate) enum AppEvent {
    Drives(Vec<Drive>),
    ImageRead {
        generation: u64,
        result: Result<Box<ChosenImage>, String>,
    },
    Hashed {
        generation: u64,
        result: Result<ImageDigests, String>,
    },
    Writer(Event),
}

/// The image the user chose, read and ready to write.
pub(crate) struct ChosenImage {
    pub(crate) image: Image,
    pub(crate) published: Option<PublishedChecksum>,
    /// What the policy judges drives by (the size, the drive holding the file), worked out once.
    pub(crate) facts: ImageFacts,
    /// Why the image is probably not a disk image (too small, no signature at its start).
    pub(crate) warning: Option<String>,
}

/// Sends an event and wakes the UI; the only way background work reaches the window.
#[derive(Clone)]
pub(crate) struct Notifier {
    tx: Sender<AppEvent>,
    ctx: egui::Context,
}

impl Notifier {
    pub(crate) fn send(&self, event: AppEvent) -> bool {
        let sent = self.tx.send(event).is_ok();
        self.ctx.request_repaint();
        sent
    }
}

/// The image step.
pub(crate) enum ImageState {
    None,
    Opening(PathBuf),
    Ready(Box<ChosenImage>),
    Failed { path: PathBuf, message: String },
}

/// SHA-256 of the chosen image.
pub(crate) enum HashState {
    Idle,
    Running,
    Done(ImageDigests),
    Failed(String),
}

/// Which screen is up.
pub(crate) enum Screen {
    Choose,
    Confirm {
        typed: Vec<String>,
    },
    Writing {
        progress: Option<Progress>,
        asking_cancel: bool,
        cancel_sent: bool,
        started: bool,
    },
    Finished(JobResult),
    Failed {
        message: String,
        hint: &'static str,
    },
}

/// The window.
pub struct GraverApp {
    pub(crate) notifier: Notifier,
    events: Receiver<AppEvent>,
    services: Services,
    pub(crate) settings: Settings,
    pub(crate) show_settings: bool,
    pub(crate) image: ImageState,
    generation: u64,
    pub(crate) hash: HashState,
    pub(crate) pasted_hash: String,
    pub(crate) drives: Vec<Drive>,
    pub(crate) show_all: bool,
    /// The chosen drives, by identity: a drive that leaves (or comes back as another
    /// attachment, or with another medium) is no longer chosen, and one that arrives
    /// under a chosen drive's name is not.
    pub(crate) selected: Vec<Identity>,
    pub(crate) screen: Screen,
    client: Option<Client>,
    _watcher: Option<graver_drives::Watcher>,
}

impl GraverApp {
    /// A window in its first state; starts watching drives if `services` says so.
    pub fn new(ctx: &egui::Context, services: Services) -> Self {
        let (tx, events) = crossbeam_channel::unbounded();
        let notifier = Notifier { tx, ctx: ctx.clone() };
        let watcher = if services.watch_drives {
            start_watcher(&notifier)
        } else {
            None
        };
        let settings = Settings::load(services.settings_path.as_ref());
        Self {
            notifier,
            events,
            services,
            settings,
            show_settings: false,
            image: ImageState::None,
            generation: 0,
            hash: HashState::Idle,
            pasted_hash: String::new(),
            drives: Vec::new(),
            show_all: false,
            selected: Vec::new(),
            screen: Screen::Choose,
            client: None,
            _watcher: watcher,
        }
    }

    /// Replaces the drive list, as the watcher does.
    pub fn set_drives(&mut self, drives: Vec<Drive>) {
        self.selected
            .retain(|chosen| drives.iter().any(|d| &d.identity == chosen));
        self.drives = drives;
    }

    /// Handles everything that arrived since the last frame.
    pub(crate) fn drain_events(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            match event {
                AppEvent::Drives(drives) => self.set_drives(drives),
                AppEvent::ImageRead { generation, result } if generation == self.generation => match result {
                    Ok(opened) => {
                        self.start_hashing(&opened.image);
                        self.image = ImageState::Ready(opened);
                    }
                    Err(message) => {
                        let path = match &self.image {
                            ImageState::Opening(p) => p.clone(),
                            _ => PathBuf::new(),
                        };
                        self.image = ImageState::Failed { path, message };
                    }
                },
                AppEvent::Hashed { generation, result } if generation == self.generation => {
                    self.hash = match result {
                        Ok(hashes) => HashState::Done(hashes),
                        Err(message) => HashState::Failed(message),
                    };
                }
                AppEvent::ImageRead { .. } | AppEvent::Hashed { .. } => {}
                AppEvent::Writer(event) => self.on_writer_event(event),
            }
        }
    }

    fn on_writer_event(&mut self, event: Event) {
        let Screen::Writing { progress, started, .. } = &mut self.screen else {
            return;
        };
        match event {
            Event::Started { .. } => *started = true,
            Event::Progress(p) => {
                *started = true;
                *progress = Some(p);
            }
            Event::Finished(result) => self.screen = Screen::Finished(result),
            Event::JobFailed { kind, message } => {
                self.screen = Screen::Failed {
                    message,
                    hint: super::texts::hint(Some(kind)),
                };
            }
            Event::LaunchFailed(error) => {
                self.screen = Screen::Failed {
                    message: error.to_string(),
                    hint: super::texts::LAUNCH_HINT,
                };
            }
            Event::WorkerLost(lost) => {
                self.screen = Screen::Failed {
                    message: crate::wording::worker_lost(&lost),
                    hint: super::texts::LOST_HINT,
                };
            }
        }
    }

    /// Starts reading `path` in the background; the result arrives as an event.
    pub fn open_image(&mut self, path: PathBuf) {
        self.generation += 1;
        self.hash = HashState::Idle;
        self.pasted_hash.clear();
        self.image = ImageState::Opening(path.clone());
        let notifier = self.notifier.clone();
        let generation = self.generation;
        std::thread::spawn(move || {
            let result = Image::open(&path).map_err(|e| e.to_string()).and_then(|image| {
                // An image that decodes to nothing is refused here, before a drive can be chosen.
                let probe = graver_image::probe(&image).map_err(|e| e.to_string())?;
                if let Some(refusal) = probe.refusal() {
                    return Err(format!("{}: {refusal}", image.path().display()));
                }
                Ok(Box::new(ChosenImage {
                    published: graver_image::find_checksum(image.path()),
                    facts: ImageFacts::of(&image),
                    warning: probe.warning(),
                    image,
                }))
            });
            notifier.send(AppEvent::ImageRead { generation, result });
        });
    }

    fn start_hashing(&mut self, image: &Image) {
        self.hash = HashState::Running;
        let notifier = self.notifier.clone();
        let generation = self.generation;
        let image = image.clone();
        std::thread::spawn(move || {
            let result = graver_image::hash_image(&image).map_err(|e| e.to_string());
            notifier.send(AppEvent::Hashed { generation, result });
        });
    }

    /// Shows the file dialog.
    pub(crate) fn pick_image(&mut self) {
        if let Some(path) = (self.services.picker)() {
            self.open_image(path);
        }
    }

    pub(crate) fn opened(&self) -> Option<&ChosenImage> {
        match &self.image {
            ImageState::Ready(opened) => Some(opened),
            _ => None,
        }
    }

    /// The drives the list shows: all, or those a user would flash.
    pub(crate) fn visible_drives(&self) -> Vec<&Drive> {
        self.drives
            .iter()
            .filter(|d| self.show_all || graver_drives::is_flashable(d))
            .collect()
    }

    /// Every hazard of `drive` for the chosen image, for its badges.
    pub(crate) fn findings(&self, drive: &Drive) -> Vec<Finding> {
        graver_drives::classify(drive, self.opened().map(|o| &o.facts))
    }

    /// The policy's verdict on `drive` for the chosen image, in the current mode, with
    /// `typed` as the name typed to confirm it and the warnings confirmed or not.
    pub(crate) fn verdict(&self, drive: &Drive, typed: Option<&str>, confirmed: bool) -> Verdict {
        judge_drive(
            drive,
            self.opened().map(|o| &o.facts),
            self.settings.unsafe_mode,
            typed,
            confirmed,
        )
    }

    /// Why `drive` cannot be chosen now, if it cannot.
    pub(crate) fn blocked_reason(&self, drive: &Drive) -> Option<String> {
        match self.verdict(drive, None, false) {
            Verdict::Refused(Refusal::Forbidden(found)) => Some(graver_drives::sentences(&found)),
            Verdict::Refused(Refusal::SystemDrive(_) | Refusal::NameMismatch { .. }) => {
                Some(super::texts::NEED_UNSAFE.to_owned())
            }
            Verdict::Ask(_) | Verdict::Allowed => None,
        }
    }

    /// The chosen drives that are still listed, in list order.
    pub(crate) fn chosen_drives(&self) -> Vec<&Drive> {
        self.drives
            .iter()
            .filter(|d| self.selected.contains(&d.identity))
            .collect()
    }

    /// Whether Write can be pressed.
    pub(crate) fn can_write(&self) -> bool {
        let chosen = self.chosen_drives();
        self.opened().is_some() && !chosen.is_empty() && chosen.iter().all(|d| self.blocked_reason(d).is_none())
    }

    /// The chosen drives whose name the user must type: the system drives.
    pub(crate) fn chosen_system_drives(&self) -> Vec<Drive> {
        self.chosen_drives()
            .into_iter()
            .filter(|d| self.verdict(d, None, true).asks_for_name())
            .cloned()
            .collect()
    }

    pub(crate) fn ask_to_write(&mut self) {
        if self.can_write() {
            let typed = vec![String::new(); self.chosen_system_drives().len()];
            self.screen = Screen::Confirm { typed };
        }
    }

    /// Starts the write the user confirmed.
    pub(crate) fn start_write(&mut self) {
        let Some(opened) = self.opened() else { return };
        let typed = match &self.screen {
            Screen::Confirm { typed } => typed.clone(),
            _ => Vec::new(),
        };
        let system = self.chosen_system_drives();
        // The dialog showed each drive's warnings and the user pressed Erase: those
        // warnings are confirmed, and the names typed go as typed (the writer checks them).
        let targets = self
            .chosen_drives()
            .into_iter()
            .map(|drive| {
                let mut target = JobTarget::drive(drive, crate::choose::warnings_of(drive, Some(&opened.facts)));
                target.typed_name = system
                    .iter()
                    .zip(&typed)
                    .find(|(s, _)| s.identity == drive.identity)
                    .map(|(_, name)| name.trim().to_owned());
                target
            })
            .collect();
        let job = WriteJob {
            image: opened.image.path().to_path_buf(),
            targets,
            verify: self.settings.verify,
            eject: self.settings.eject,
            overwrite: false,
            // The window hashes the image on its own thread already.
            sha256: false,
        };
        let client = self.client.get_or_insert_with(|| {
            let client = Client::spawn(self.services.launch.clone());
            forward_writer_events(&client, &self.notifier);
            client
        });
        if client.commands.send(Command::Write(job)).is_ok() {
            self.screen = Screen::Writing {
                progress: None,
                asking_cancel: false,
                cancel_sent: false,
                started: false,
            };
        } else {
            self.client = None;
            self.screen = Screen::Failed {
                message: "the writer could not be reached".into(),
                hint: super::texts::LOST_HINT,
            };
        }
    }

    pub(crate) fn cancel_write(&mut self) {
        if let Screen::Writing {
            cancel_sent,
            asking_cancel,
            ..
        } = &mut self.screen
        {
            *asking_cancel = false;
            *cancel_sent = true;
            if let Some(client) = &self.client {
                let _ = client.commands.send(Command::Cancel);
            }
        }
    }

    /// Back to choosing, keeping the image; `keep_image` false starts over.
    pub(crate) fn back_to_choose(&mut self, keep_image: bool) {
        self.screen = Screen::Choose;
        self.selected.clear();
        if !keep_image {
            self.generation += 1;
            self.image = ImageState::None;
            self.hash = HashState::Idle;
            self.pasted_hash.clear();
        }
    }

    pub(crate) fn save_settings(&self) {
        self.settings.save(self.services.settings_path.as_ref());
    }

    /// How the pasted hash compares: `None` while empty or not a hash.
    pub(crate) fn pasted_verdict(&self) -> Option<bool> {
        let HashState::Done(hashes) = &self.hash else {
            return None;
        };
        let pasted = PublishedChecksum {
            source: PathBuf::new(),
            name: None,
            sha256: graver_image::parse_sha256(&self.pasted_hash)?,
        };
        pasted
            .verdict(Some(&hashes.file), Some(&hashes.image))
            .map(|verdict| verdict != ChecksumVerdict::Mismatch)
    }

    /// The published checksum's verdict once the hashes are known.
    pub(crate) fn published_verdict(&self) -> Option<ChecksumVerdict> {
        let published = self.opened()?.published.as_ref()?;
        let HashState::Done(hashes) = &self.hash else {
            return None;
        };
        published.verdict(Some(&hashes.file), Some(&hashes.image))
    }

    /// Takes files dropped on the window.
    pub(crate) fn take_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Option<PathBuf> = ctx.input(|i| i.raw.dropped_files.first().map(|f| f.path().to_path_buf()));
        if let Some(path) = dropped
            && matches!(self.screen, Screen::Choose)
        {
            self.open_image(path);
        }
    }

    /// The image's path, for the result screen.
    pub(crate) fn image_path(&self) -> Option<&Path> {
        self.opened().map(|o| o.image.path())
    }

    /// The failure class of a finished job, for its hint.
    pub(crate) fn worst(result: &JobResult) -> Option<ErrorKind> {
        result.worst()
    }
}

/// The policy's verdict on `drive` for an image with `facts`, the window's way: unsafe
/// mode from the settings, the name typed in the confirmation, the warnings confirmed
/// by the confirmation itself.
pub(crate) fn judge_drive(
    drive: &Drive,
    facts: Option<&ImageFacts>,
    unsafe_mode: bool,
    typed: Option<&str>,
    confirmed: bool,
) -> Verdict {
    let consent = Consent {
        unsafe_mode,
        typed_name: typed,
        warnings_confirmed: confirmed,
    };
    graver_drives::judge(drive, facts, consent)
}

/// Starts the drive watcher and forwards each list to the window.
fn start_watcher(notifier: &Notifier) -> Option<graver_drives::Watcher> {
    let watcher = graver_drives::Watcher::start(Duration::from_secs(1)).ok()?;
    let drives = watcher.drives().clone();
    let notifier = notifier.clone();
    std::thread::spawn(move || {
        for list in &drives {
            if !notifier.send(AppEvent::Drives(list)) {
                return;
            }
        }
    });
    Some(watcher)
}

/// Forwards the client's events to the window, waking it for each.
fn forward_writer_events(client: &Client, notifier: &Notifier) {
    let events = client.events.clone();
    let notifier = notifier.clone();
    std::thread::spawn(move || {
        for event in &events {
            if !notifier.send(AppEvent::Writer(event)) {
                return;
            }
        }
    });
}
