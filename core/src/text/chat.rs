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

/// Work a render may do besides printing the messages (minijinja's fuel: an instruction, or 64
/// bytes of data produced, per unit): half a million instructions, or 32 MB of text.
const RENDER_FUEL: u64 = 500_000;

/// Bytes of rendered text allowed besides four times the messages' text.
const MAX_OUTPUT: usize = 16 << 20;

/// Output that refuses to grow past `left` more bytes (and says so in `full`).
struct Capped {
    text: Vec<u8>,
    left: usize,
    full: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.left {
            self.full = true;
            return Err(std::io::Error::other("output cap"));
        }
        self.left -= buf.len();
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Longest template line accepted, in bytes (the engine's columns are 16-bit).
const MAX_LINE: usize = 60_000;

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
        // minijinja counts columns in 16 bits and, in debug builds, overflows reporting a syntax error
        // past column 65,535 (a panic): longer lines are refused here instead.
        if let Some((i, line)) = t.source.lines().enumerate().find(|(_, l)| l.len() > MAX_LINE) {
            let message =
                format!("line {} is {} bytes long; lines of up to {MAX_LINE} are read", i + 1, line.len());
            return Err(Error::ChatTemplate { path: t.path, message });
        }
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

    fn error(&self, e: impl std::fmt::Display) -> Error {
        Error::ChatTemplate { path: self.path.clone(), message: e.to_string() }
    }

    /// Renders the conversation; `enable_thinking` is passed to templates that know it (Qwen3).
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        enable_thinking: bool,
    ) -> Result<String> {
        let mut env = self.environment()?;
        // A template is code from the model directory: a loop over `range(100000)` inside another
        // would render for hours. Qwen3's takes about 100 units for a short question, 8,000 for a
        // 100 kB one.
        let bytes: usize = messages.iter().map(|m| m.role.len() + m.content.len()).sum();
        // Each byte of the messages buys room to print it eight times.
        env.set_fuel(Some(RENDER_FUEL + bytes as u64 / 8));
        let template = env.get_template("chat").map_err(|e| self.error(e))?;
        // The engine charges fuel for printed text after printing it: `{{ [messages] * 100000 }}`
        // would fill memory first. The output stops at a cap instead.
        let mut out = Capped { text: Vec::new(), left: MAX_OUTPUT + 4 * bytes, full: false };
        let context = minijinja::context! {
            messages => minijinja::value::Value::from(minijinja::value::Serde(messages)),
            add_generation_prompt => add_generation_prompt,
            enable_thinking => enable_thinking,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
        };
        match template.render_captured_to(context, &mut out) {
            Ok(_) => String::from_utf8(out.text).map_err(|e| self.error(e)),
            Err(_) if out.full => Err(self.error(format!(
                "the rendered prompt passed {} bytes (4 times the messages' text and {MAX_OUTPUT} more)",
                MAX_OUTPUT + 4 * bytes
            ))),
            Err(e) => Err(self.error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_runaway_template_runs_out_of_fuel() {
        // A hundred million steps: rendered for hours before the fuel bound.
        let source = "{% for a in range(10000) %}{% for b in range(10000) %}{{ messages[0].content }}\
                      {% endfor %}{% endfor %}";
        let t = ChatTemplate::new(source, "", "", Path::new("m/tokenizer_config.json")).unwrap();
        let start = std::time::Instant::now();
        let err = t.render(&[Message::user("hi")], true, true).unwrap_err().to_string();
        assert!(err.contains("fuel") && err.contains("m/tokenizer_config.json"), "{err}");
        assert!(start.elapsed().as_secs_f64() < 10.0, "took {:?}", start.elapsed());
        // A long message is no reason to run out: its bytes add to the budget.
        let plain = ChatTemplate::new("{{ messages[0].content }}", "", "", Path::new("t")).unwrap();
        let long = "x".repeat(10_000_000);
        assert_eq!(plain.render(&[Message::user(long.clone())], false, true).unwrap().len(), long.len());
    }

    #[test]
    fn regression_printing_a_repeated_list_stops_at_the_cap() {
        // 100,000 copies of a 20 kB message printed: 2 GB built before the fuel was charged.
        let t = ChatTemplate::new("{{ [messages] * 100000 }}", "", "", Path::new("t")).unwrap();
        let err = t.render(&[Message::user("x".repeat(20_000))], true, true).unwrap_err().to_string();
        assert!(err.contains("passed") && err.contains("bytes"), "{err}");
        // Found by `fuzz_chat_template` (seed 1): a 100 MB string built, then printed, beside a
        // 200 kB message: 200 MB at peak. The fuel now buys 8 bytes of text per message byte.
        let t = ChatTemplate::new("{{ 'x' * 100000000 }}", "", "", Path::new("t")).unwrap();
        assert!(
            t.render(&[Message::user("y".repeat(200_000))], true, true)
                .unwrap_err()
                .to_string()
                .contains("fuel")
        );
    }

    #[test]
    fn regression_syntax_error_past_column_65535_is_an_error() {
        // minijinja's lexer added 1 to a saturated 16-bit column: a panic in debug builds.
        let source = format!("{}{{% if %}}", "x".repeat(70_000));
        let err =
            ChatTemplate::new(source, "", "", Path::new("t/tokenizer_config.json")).unwrap_err().to_string();
        assert!(err.contains("t/tokenizer_config.json") && err.contains("line 1"), "{err}");
        let fine = format!("{}\n{{{{ bos_token }}}}", "x".repeat(50_000));
        assert!(ChatTemplate::new(fine, "<s>", "", Path::new("t")).is_ok());
    }
}
