//! Chat templates from `tokenizer_config.json`, rendered the way transformers does.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The message text.
    pub content: String,
}

impl Message {
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Message { role: "user".into(), content: content.into() }
    }
}

/// A special token of `tokenizer_config.json` (`"eos_token": "<x>"` or `{"content": "<x>", ...}`).
pub(crate) fn special_token<'a>(config: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    match config.get(key)? {
        serde_json::Value::String(s) => Some(s),
        obj => obj.get("content")?.as_str(),
    }
}

/// A Jinja chat template with the special tokens it may refer to.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: String,
    bos_token: String,
    eos_token: String,
    path: PathBuf,
}

impl ChatTemplate {
    /// A template from its Jinja source; `path` is only used in error messages.
    pub fn new(source: impl Into<String>, bos_token: &str, eos_token: &str, path: &Path) -> Result<Self> {
        let t = ChatTemplate {
            source: source.into(),
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
            path: path.into(),
        };
        // Parse once up front so a broken template is reported at load time, not mid-training.
        t.environment()?;
        Ok(t)
    }

    /// The template (and bos/eos tokens) of parsed `tokenizer_config.json` contents read from
    /// `path`; `None` when it has no template.
    pub fn from_tokenizer_config(v: &serde_json::Value, path: &Path) -> Result<Option<Self>> {
        let token = |key: &str| special_token(v, key).unwrap_or_default().to_string();
        let source = match v.get("chat_template") {
            Some(serde_json::Value::String(s)) => s.clone(),
            // Some configs hold a list of named templates; the default one is the chat template.
            Some(serde_json::Value::Array(list)) => match list
                .iter()
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                .and_then(|t| t.get("template"))
                .and_then(|t| t.as_str())
            {
                Some(s) => s.to_string(),
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
        Self::new(source, &token("bos_token"), &token("eos_token"), path).map(Some)
    }

    fn environment(&self) -> Result<minijinja::Environment<'_>> {
        let mut env = minijinja::Environment::new();
        // transformers renders with trim_blocks and lstrip_blocks on; Python string methods
        // (`startswith`, `split`, `strip`, ...) come from pycompat.
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| self.error(e))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", |_fmt: String| "26 Nov 2026".to_string());
        env.add_template("chat", &self.source).map_err(|e| self.error(e))?;
        Ok(env)
    }

    fn error(&self, e: minijinja::Error) -> Error {
        Error::ChatTemplate { path: self.path.clone(), message: e.to_string() }
    }

    /// Renders the conversation; `enable_thinking` is passed to templates that know it (Qwen3).
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        enable_thinking: bool,
    ) -> Result<String> {
        let env = self.environment()?;
        let template = env.get_template("chat").map_err(|e| self.error(e))?;
        template
            .render(minijinja::context! {
                messages => minijinja::value::Value::from(minijinja::value::Serde(messages)),
                add_generation_prompt => add_generation_prompt,
                enable_thinking => enable_thinking,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(|e| self.error(e))
    }
}
