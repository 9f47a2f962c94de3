//! Text in and out of the model: the tokenizer and the chat template.

mod chat;
mod tokenizer;

pub use chat::{ChatTemplate, Message};
pub use tokenizer::Tokenizer;
