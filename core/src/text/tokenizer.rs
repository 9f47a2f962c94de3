//! A Hugging Face `tokenizer.json` with its chat template and stop tokens.

use std::path::{Path, PathBuf};

use super::chat::{ChatTemplate, Message, special_token};
use crate::error::{Error, Result};

/// The tokenizer of a model directory.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
    chat_template: Option<ChatTemplate>,
    eos_token_ids: Vec<u32>,
    id_limit: usize,
}

/// One past the largest id of `inner`'s vocabulary, added tokens included.
fn id_limit(inner: &tokenizers::Tokenizer) -> usize {
    inner.get_vocab(true).values().max().map_or(0, |&id| id as usize + 1)
}

impl Tokenizer {
    /// Loads `tokenizer.json` and, when present, `tokenizer_config.json` (chat template, EOS) from `dir`.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        let bytes = crate::error::read_file(&path)?;
        let mut tok = Self::from_bytes(&bytes, &path)?;
        let config = dir.join("tokenizer_config.json");
        if config.exists() {
            let v: serde_json::Value = crate::error::read_json(&config)?;
            tok.chat_template = ChatTemplate::from_tokenizer_config(&v, &config)?;
            if let Some(id) = special_token(&v, "eos_token").and_then(|t| tok.inner.token_to_id(t)) {
                tok.add_eos_token_id(id);
            }
        }
        Ok(tok)
    }

    /// Parses the contents of a `tokenizer.json`; `path` is named in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::Tokenizer { path: path.into(), message: e.to_string() })?;
        let id_limit = id_limit(&inner);
        Ok(Tokenizer { inner, path: path.into(), chat_template: None, eos_token_ids: Vec::new(), id_limit })
    }

    /// Wraps an already-built tokenizer (e.g. the built-in task's).
    pub fn from_inner(inner: tokenizers::Tokenizer, eos_token_ids: Vec<u32>) -> Self {
        let id_limit = id_limit(&inner);
        Tokenizer { inner, path: PathBuf::from("<built-in>"), chat_template: None, eos_token_ids, id_limit }
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Sets the chat template.
    pub fn set_chat_template(&mut self, template: Option<ChatTemplate>) {
        self.chat_template = template;
    }

    /// The chat template, if the tokenizer has one.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat_template.as_ref()
    }

    /// Adds a token id that ends generation (kept unique).
    pub fn add_eos_token_id(&mut self, id: u32) {
        if !self.eos_token_ids.contains(&id) {
            self.eos_token_ids.push(id);
        }
    }

    /// Token ids that end generation.
    pub fn eos_token_ids(&self) -> &[u32] {
        &self.eos_token_ids
    }

    /// One past the largest id the tokenizer knows (added tokens included): a model's embedding
    /// may have more rows (padding), which must never be sampled.
    pub fn id_limit(&self) -> usize {
        self.id_limit
    }

    /// The file the tokenizer was read from (named in errors).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The id of a token, if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    fn error(&self, e: impl std::fmt::Display) -> Error {
        Error::Tokenizer { path: self.path.clone(), message: e.to_string() }
    }

    /// Encodes text without adding special tokens (chat templates already contain them).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(|e| self.error(e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Encodes text and returns, for each token, the byte offset where it starts in `text`.
    pub fn encode_with_offsets(&self, text: &str) -> Result<(Vec<u32>, Vec<usize>)> {
        let enc = self.inner.encode(text, false).map_err(|e| self.error(e))?;
        Ok((enc.get_ids().to_vec(), enc.get_offsets().iter().map(|o| o.0).collect()))
    }

    /// Decodes ids to text, keeping special tokens such as `</think>` (steps and grading need them).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        if let Some(bad) = ids.iter().find(|&&id| self.inner.id_to_token(id).is_none()) {
            return Err(Error::invalid(
                "token id",
                format!("{bad} is not in the vocabulary of {}", self.path.display()),
            ));
        }
        self.inner.decode(ids, false).map_err(|e| self.error(e))
    }

    /// Decodes ids to text as [`decode`](Self::decode) does, with each token's byte range in it: a
    /// token's piece is the text it adds to those before it (empty while it only starts a character
    /// that a later token completes), so spaces a decoder puts between tokens stay in place.
    pub fn decode_with_offsets(&self, ids: &[u32]) -> Result<(String, Vec<(usize, usize)>)> {
        self.decode(ids)?; // names an unknown id
        let mut stream = self.inner.decode_stream(false);
        let mut text = String::new();
        let mut offsets = Vec::with_capacity(ids.len());
        for &id in ids {
            let start = text.len();
            if let Some(piece) = stream.step(id).map_err(|e| self.error(e))? {
                text.push_str(&piece);
            }
            offsets.push((start, text.len()));
        }
        Ok((text, offsets))
    }

    /// Renders a single user prompt with the chat template (generation prompt appended).
    pub fn apply_chat_template(&self, messages: &[Message], enable_thinking: bool) -> Result<String> {
        let template = self.chat_template.as_ref().ok_or_else(|| {
            self.error("has no chat_template (tokenizer_config.json missing or without one)")
        })?;
        template.render(messages, true, enable_thinking)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/qwen3-tokenizer"))
    }

    #[test]
    fn matches_python_tokenizers_and_chat_template() {
        let tok = Tokenizer::from_dir(&fixture()).unwrap();
        let cases: serde_json::Value = crate::error::read_json(&fixture().join("cases.json")).unwrap();
        for case in cases["encode"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let want: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
            assert_eq!(tok.encode(text).unwrap(), want, "encoding {text:?}");
            assert_eq!(tok.decode(&want).unwrap(), text, "decoding {text:?}");
            let (joined, offsets) = tok.decode_with_offsets(&want).unwrap();
            assert_eq!(joined, text, "pieces of {text:?}");
            assert!(offsets.windows(2).all(|w| w[0].1 == w[1].0), "contiguous pieces of {text:?}");
        }
        for case in cases["chat_template"].as_array().unwrap() {
            let messages: Vec<Message> = serde_json::from_value(case["messages"].clone()).unwrap();
            let thinking = case["enable_thinking"].as_bool().unwrap();
            let rendered = tok.apply_chat_template(&messages, thinking).unwrap();
            assert_eq!(rendered, case["rendered"].as_str().unwrap(), "enable_thinking={thinking}");
        }
        assert_eq!(tok.eos_token_ids(), &[151645]);
        assert_eq!(tok.id_limit(), 151_669, "Qwen3's embedding has 151,936 rows, its tokenizer fewer ids");
    }

    #[test]
    fn bad_token_id_is_an_error() {
        let tok = Tokenizer::from_dir(&fixture()).unwrap();
        let err = tok.decode(&[1, 99_999_999]).unwrap_err().to_string();
        assert!(err.contains("99999999"), "{err}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = Tokenizer::from_dir(Path::new("/nonexistent/model")).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/model/tokenizer.json"), "{err}");
    }
}
