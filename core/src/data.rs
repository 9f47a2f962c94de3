//! Problems: the built-in task's or a user's JSONL file, and the prompts a model sees for them.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::grade::parse_ground_truth;
use crate::text::{Message, Tokenizer};

/// The paper's instruction, appended to every problem of a user's dataset.
pub const INSTRUCTION: &str = "Please reason step by step, and put your final answer within \\boxed{}.";

/// A problem with a verifiable answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The exact text the model continues from (chat template applied, thinking opened).
    pub prompt: String,
    /// The ground truth, normalised (`#### 42` becomes `42`).
    pub answer: String,
}

#[derive(Deserialize)]
struct Line {
    problem: Option<String>,
    question: Option<String>,
    answer: Option<serde_json::Value>,
    solution: Option<String>,
}

/// Reads `{"problem"|"question": ..., "answer"|"solution": ...}` lines (GSM8K's `#### 42` answers and
/// MATH's `\boxed{}` solutions are parsed) and renders each with the paper's prompt template inside
/// the tokenizer's chat template, thinking on. Errors name the file and line.
pub fn load_jsonl(path: &Path, tokenizer: &Tokenizer) -> Result<Vec<Problem>> {
    read_problems(path, |question| chat_prompt(tokenizer, question))
}

/// Reads problems of the built-in task (`{"problem": "37+8-6", "answer": 39}`) in the task's own
/// prompt format. Errors name the file and line.
pub fn load_task_jsonl(path: &Path) -> Result<Vec<Problem>> {
    read_problems(path, |question| Ok(crate::task::Chain::parse(question)?.prompt()))
}

/// Problem lines of `path`, each question turned into its prompt by `prompt`.
fn read_problems(path: &Path, prompt: impl Fn(&str) -> Result<String>) -> Result<Vec<Problem>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut problems = Vec::new();
    for (i, raw) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = |message: String| Error::invalid(format!("{}:{}", path.display(), i + 1), message);
        let line: Line = serde_json::from_str(raw).map_err(|e| at(e.to_string()))?;
        let question = line
            .problem
            .or(line.question)
            .ok_or_else(|| at("needs a \"problem\" or \"question\" field".into()))?;
        let answer = match (line.answer, line.solution) {
            (Some(serde_json::Value::String(s)), _) => s,
            (Some(serde_json::Value::Number(n)), _) => n.to_string(),
            (Some(other), _) => {
                return Err(at(format!("\"answer\" must be a string or number, not {other}")));
            }
            (None, Some(solution)) => solution,
            (None, None) => return Err(at("needs an \"answer\" or \"solution\" field".into())),
        };
        let answer = parse_ground_truth(&answer);
        if answer.is_empty() {
            return Err(at("the answer is empty".into()));
        }
        let prompt = prompt(&question).map_err(|e| at(e.to_string()))?;
        problems.push(Problem { prompt, answer });
    }
    if problems.is_empty() {
        return Err(Error::invalid(path.display().to_string(), "contains no problems"));
    }
    Ok(problems)
}

/// The paper's prompt for `question` in the model's chat template, with thinking enabled.
pub fn chat_prompt(tokenizer: &Tokenizer, question: &str) -> Result<String> {
    tokenizer.apply_chat_template(&[Message::user(format!("{question} {INSTRUCTION}"))], true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qwen_tokenizer() -> Tokenizer {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/qwen3-tokenizer");
        Tokenizer::from_dir(&dir).unwrap()
    }

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("stepgrpo-data-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn reads_gsm8k_and_math_lines() {
        let path = write(
            "ok.jsonl",
            "{\"question\": \"2+2?\", \"answer\": \"2+2=4\\n#### 4\"}\n\n{\"problem\": \"x?\", \"solution\": \"so \\\\boxed{\\\\frac{1}{2}}\"}\n{\"problem\": \"n?\", \"answer\": 7}\n",
        );
        let problems = load_jsonl(&path, &qwen_tokenizer()).unwrap();
        let answers: Vec<&str> = problems.iter().map(|p| p.answer.as_str()).collect();
        assert_eq!(answers, ["4", "\\frac{1}{2}", "7"]);
        assert!(problems[0].prompt.contains("2+2? Please reason step by step"));
        assert!(problems[0].prompt.ends_with("<|im_start|>assistant\n"), "{:?}", problems[0].prompt);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn errors_name_file_and_line() {
        let path = write("bad.jsonl", "{\"question\": \"a\", \"answer\": \"1\"}\n{\"question\": \"b\"}\n");
        let err = load_jsonl(&path, &qwen_tokenizer()).unwrap_err().to_string();
        assert!(err.contains("bad.jsonl:2") && err.contains("answer"), "{err}");
        std::fs::remove_file(path).unwrap();
    }
}
