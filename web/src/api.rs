//! The JavaScript API: a `Trainer` class whose methods return promises of plain objects. Meant to
//! run in a Web Worker (see `js/worker.js`), so a page never freezes while it trains.

use std::cell::RefCell;

use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::config::WebConfig;
use crate::error::{WebError, WebResult};
use crate::session::{GenerateOptions, Session, Which};

/// A Step-GRPO training session on the built-in task.
#[wasm_bindgen]
pub struct Trainer {
    /// Taken out while an async call runs, so overlapping calls fail clearly instead of aliasing.
    session: RefCell<Option<Session>>,
}

/// Converts a Rust value to a plain JavaScript object (maps as objects, `None` as `null`).
fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&format!("converting the result for JavaScript: {e}")))
}

/// Reads an optional JavaScript object into `T` (`undefined` and `null` give the defaults).
fn from_js<T: serde::de::DeserializeOwned + Default>(value: JsValue, what: &str) -> WebResult<T> {
    if value.is_undefined() || value.is_null() {
        return Ok(T::default());
    }
    serde_wasm_bindgen::from_value(value).map_err(|e| WebError::Argument(format!("{what}: {e}")))
}

fn js_error(e: WebError) -> JsError {
    JsError::new(&e.to_string())
}

impl Trainer {
    /// Runs `f` on the session, which is lent out for the duration of the call.
    async fn with<T, F>(&self, f: F) -> Result<T, JsError>
    where
        F: AsyncFnOnce(&mut Session) -> WebResult<T>,
    {
        let mut session = self.session.borrow_mut().take().ok_or_else(|| js_error(WebError::Busy))?;
        let out = f(&mut session).await;
        *self.session.borrow_mut() = Some(session);
        out.map_err(js_error)
    }

    fn peek<T>(&self, f: impl FnOnce(&Session) -> T) -> Result<T, JsError> {
        self.session.borrow().as_ref().map(f).ok_or_else(|| js_error(WebError::Busy))
    }
}

#[wasm_bindgen]
impl Trainer {
    /// Creates a trainer: picks the device (WebGPU, else the CPU), builds the tiny model and the
    /// task. `config` is an optional object of `WebConfig` knobs (camelCase).
    pub async fn create(config: JsValue) -> Result<Trainer, JsError> {
        let config: WebConfig = from_js(config, "config").map_err(js_error)?;
        let session = Session::new(config).await.map_err(js_error)?;
        Ok(Trainer { session: RefCell::new(Some(session)) })
    }

    /// Every option of `create` with its default: the browser recipe, `recipes/browser.toml`.
    pub fn defaults() -> Result<JsValue, JsError> {
        to_js(&WebConfig::default())
    }

    /// The device: `{ backend: "webgpu" | "cpu", name, fallbackReason }`.
    pub fn device(&self) -> Result<JsValue, JsError> {
        to_js(&self.peek(|s| s.device_info().clone())?)
    }

    /// The configuration with every default filled in.
    pub fn config(&self) -> Result<JsValue, JsError> {
        to_js(&self.peek(|s| s.config().clone())?)
    }

    /// Where training stands: `{ phase, method, sftStep, sftSteps, rlStep, rlSteps, done }`.
    pub fn status(&self) -> Result<JsValue, JsError> {
        to_js(&self.peek(Session::status)?)
    }

    /// The next step: SFT until its steps are done, then RL. Resolves to a step report
    /// `{ phase, step, totalSteps, seconds, metrics, group, done }`.
    pub async fn step(&self) -> Result<JsValue, JsError> {
        to_js(&self.with(async |s| s.step().await).await?)
    }

    /// One supervised step (fails once RL has started).
    #[wasm_bindgen(js_name = sftStep)]
    pub async fn sft_step(&self) -> Result<JsValue, JsError> {
        to_js(&self.with(async |s| s.sft_step().await).await?)
    }

    /// One RL step of the configured method; the first one ends SFT and starts RL from its model.
    #[wasm_bindgen(js_name = rlStep)]
    pub async fn rl_step(&self) -> Result<JsValue, JsError> {
        to_js(&self.with(async |s| s.rl_step().await).await?)
    }

    /// Answers a problem such as `"37+8-6"`. `options`: `{ model: "current" | "warmStart",
    /// temperature, deer, seed }`. Resolves to a rollout view.
    pub async fn generate(&self, problem: String, options: JsValue) -> Result<JsValue, JsError> {
        let options: GenerateOptions = from_js(options, "options").map_err(js_error)?;
        to_js(&self.with(async |s| s.generate(&problem, &options).await).await?)
    }

    /// Accuracy and lengths on the first `n` held-out problems; `model` is `"current"` (default) or
    /// `"warmStart"`, `deer` turns probes on while answering.
    pub async fn evaluate(&self, n: usize, model: JsValue, deer: bool) -> Result<JsValue, JsError> {
        let which: Which = from_js(model, "model").map_err(js_error)?;
        to_js(&self.with(async |s| s.evaluate(n, which, deer).await).await?)
    }

    /// The text of held-out problem `index` (never trained on), e.g. `"37+8-6=?"`.
    #[wasm_bindgen(js_name = heldOutProblem)]
    pub fn held_out_problem(&self, index: usize) -> Result<String, JsError> {
        self.peek(|s| s.held_out_problem(index))
    }

    /// The current model's weights as a Hugging Face `model.safetensors` file.
    #[wasm_bindgen(js_name = exportCheckpoint)]
    pub async fn export_checkpoint(&self) -> Result<js_sys::Uint8Array, JsError> {
        let bytes = self.with(async |s| s.export_checkpoint().await).await?;
        Ok(js_sys::Uint8Array::from(bytes.as_slice()))
    }

    /// The newest checkpoint of the current phase (kept every `saveSteps` steps), as
    /// `{ phase, step, model }` with `model` the `model.safetensors` bytes; `null` when none.
    pub fn checkpoint(&self) -> Result<JsValue, JsError> {
        let saved = self.peek(Session::latest_checkpoint)?.map_err(js_error)?;
        let Some(saved) = saved else { return Ok(JsValue::NULL) };
        let out = to_js(&saved)?;
        let bytes = js_sys::Uint8Array::from(saved.model.as_slice());
        js_sys::Reflect::set(&out, &"model".into(), &bytes)
            .map_err(|_| JsError::new("building the checkpoint"))?;
        Ok(out)
    }

    /// Loads a `model.safetensors` of the task's model (from `exportCheckpoint` or `stepgrpo train`)
    /// as the warm start: SFT ends and RL starts over from these weights.
    #[wasm_bindgen(js_name = importCheckpoint)]
    pub async fn import_checkpoint(&self, bytes: Vec<u8>) -> Result<(), JsError> {
        self.with(async |s| s.import_checkpoint(bytes)).await
    }
}
