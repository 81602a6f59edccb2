//! The token sources users name: one file (or folder) per credential.
