//! Test doubles (feature `testing`).
