//! Nothing to link: this package only holds Graver's end-to-end tests under `e2e/`.
