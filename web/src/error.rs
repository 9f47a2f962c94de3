//! Errors of the browser package; at the JavaScript boundary each becomes a thrown `Error` whose
//! message says what went wrong.

/// Result alias of the package.
pub type WebResult<T> = std::result::Result<T, WebError>;

/// Everything a call from JavaScript can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The trainer core failed (invalid option, checkpoint, readback).
    #[error(transparent)]
    Core(#[from] stepgrpo_core::Error),
    /// A configuration value passed from JavaScript is invalid.
    #[error("invalid config: {0}")]
    Config(String),
    /// A call does not fit the trainer's phase (e.g. an SFT step after RL started).
    #[error("{0}")]
    Phase(String),
    /// A value passed from JavaScript has the wrong shape.
    #[error("invalid argument: {0}")]
    Argument(String),
    /// No device could be set up (WebGPU was required but is unavailable).
    #[error("device: {0}")]
    Device(String),
    /// Another call on the same trainer is still running (calls must be awaited one at a time).
    #[error("the trainer is busy with another call; await each call before the next")]
    Busy,
}
