//! What the fake server answers: [`Behaviour`] and the replies it renders.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::recorded::{RecordedRequest, RequestKind};

/// How the fake server answers a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// A valid reply for the kind of request: a generation request gets a
    /// guide made from the question (see [`FakeGuide::for_question`]), a
    /// ranking request `{"choice": null}`. The default.
    Auto,
    /// A valid generation reply with this guide.
    Guide(FakeGuide),
    /// A valid ranking reply `{"choice": <this value>}`: a number counted
    /// from 1 as the model sends it, `null`, or anything else to test
    /// malformed choices.
    Choice(Value),
    /// A 200 chat completion whose message content is this text verbatim
    /// (e.g. prose, or JSON of the wrong shape).
    Content(String),
    /// This status and body, verbatim, as `application/json` (e.g. a body
    /// that is not JSON, or JSON without `choices`).
    Raw {
        /// The HTTP status.
        status: u16,
        /// The body.
        body: String,
    },
    /// This status with an OpenAI-style error body
    /// `{"error": {"message", "type", "code"}}`.
    Error {
        /// The HTTP status.
        status: u16,
        /// `error.message`.
        message: String,
        /// `error.code` (also `error.type`), e.g. `insufficient_quota`.
        code: Option<String>,
    },
    /// Waits this long (e.g. longer than the client's timeout), then
    /// answers as the inner behaviour says.
    Delay(Duration, Box<Behaviour>),
    /// Closes the connection without answering.
    Hangup,
}

impl Behaviour {
    /// A valid generation reply with this guide, the default usage
    /// ([`Usage::default`]) and the requested model.
    pub fn guide(name: &str, description: &str, answer: &str) -> Behaviour {
        Behaviour::Guide(FakeGuide::new(name, description, answer))
    }

    /// A valid ranking reply picking candidate `number` (counted from 1, as
    /// in the prompt), or none.
    pub fn choice(number: Option<u64>) -> Behaviour {
        Behaviour::Choice(number.map_or(Value::Null, Value::from))
    }

    /// A 200 chat completion whose content is this text.
    pub fn content(text: &str) -> Behaviour {
        Behaviour::Content(text.to_owned())
    }

    /// A 200 reply whose body is not JSON at all.
    pub fn not_json() -> Behaviour {
        Behaviour::Raw {
            status: 200,
            body: "<html><body>Bad gateway</body></html>".to_owned(),
        }
    }

    /// A 200 reply that is JSON but has no `choices`.
    pub fn no_choices() -> Behaviour {
        Behaviour::Raw {
            status: 200,
            body: json!({"id": "chatcmpl-fake", "object": "chat.completion", "choices": []})
                .to_string(),
        }
    }

    /// This status with an OpenAI-style error body carrying `message`.
    pub fn error(status: u16, message: &str) -> Behaviour {
        Behaviour::Error {
            status,
            message: message.to_owned(),
            code: None,
        }
    }

    /// Waits `delay`, then answers as `then` says.
    pub fn delayed(delay: Duration, then: Behaviour) -> Behaviour {
        Behaviour::Delay(delay, Box::new(then))
    }
}

impl From<FakeGuide> for Behaviour {
    fn from(guide: FakeGuide) -> Behaviour {
        Behaviour::Guide(guide)
    }
}

/// The `usage` of a fake reply; `None` fields are left out (all `None`:
/// no `usage` at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// `usage.prompt_tokens`.
    pub prompt_tokens: Option<u32>,
    /// `usage.completion_tokens`.
    pub completion_tokens: Option<u32>,
    /// `usage.total_tokens`.
    pub total_tokens: Option<u32>,
}

impl Usage {
    /// Only `total_tokens`.
    pub fn total(tokens: u32) -> Usage {
        Usage {
            prompt_tokens: None,
            completion_tokens: None,
            total_tokens: Some(tokens),
        }
    }

    /// `prompt_tokens` and `completion_tokens`, no total.
    pub fn split(prompt: u32, completion: u32) -> Usage {
        Usage {
            prompt_tokens: Some(prompt),
            completion_tokens: Some(completion),
            total_tokens: None,
        }
    }

    /// No `usage` in the reply.
    pub fn none() -> Usage {
        Usage {
            prompt_tokens: None,
            completion_tokens: None,
            total_tokens: None,
        }
    }

    fn to_json(self) -> Option<Value> {
        let mut usage = Map::new();
        let fields = [
            ("prompt_tokens", self.prompt_tokens),
            ("completion_tokens", self.completion_tokens),
            ("total_tokens", self.total_tokens),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                usage.insert(key.to_owned(), Value::from(value));
            }
        }
        (!usage.is_empty()).then_some(Value::Object(usage))
    }
}

/// 30 prompt + 12 completion = 42 tokens.
impl Default for Usage {
    fn default() -> Usage {
        Usage {
            prompt_tokens: Some(30),
            completion_tokens: Some(12),
            total_tokens: Some(42),
        }
    }
}

/// The guide a fake generation reply holds, and how the reply looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeGuide {
    /// `name`.
    pub name: String,
    /// `description`.
    pub description: String,
    /// `answer`.
    pub answer: String,
    /// The reply's `usage`.
    pub usage: Usage,
    /// The reply's `model`; `None` repeats the requested model.
    pub model: Option<String>,
    /// Wraps the JSON in a Markdown fence (```` ```json … ``` ````), as
    /// some models do.
    pub fenced: bool,
}

impl FakeGuide {
    /// This guide, with the default usage and the requested model, not
    /// fenced.
    pub fn new(name: &str, description: &str, answer: &str) -> FakeGuide {
        FakeGuide {
            name: name.to_owned(),
            description: description.to_owned(),
            answer: answer.to_owned(),
            usage: Usage::default(),
            model: None,
            fenced: false,
        }
    }

    /// What [`Behaviour::Auto`] answers a generation request with, for a
    /// question (whitespace collapsed to single spaces, `Q`):
    /// name `Help: Q` (cut to 60 characters), description
    /// `A guide for "Q"`, answer `The fake model's answer to "Q".`
    pub fn for_question(question: &str) -> FakeGuide {
        let question = question.split_whitespace().collect::<Vec<_>>().join(" ");
        let name: String = format!("Help: {question}").chars().take(60).collect();
        FakeGuide::new(
            name.trim_end(),
            &format!("A guide for \"{question}\""),
            &format!("The fake model's answer to \"{question}\"."),
        )
    }

    /// The same with this usage.
    pub fn with_usage(mut self, usage: Usage) -> FakeGuide {
        self.usage = usage;
        self
    }

    /// The same with `total_tokens` only.
    pub fn with_tokens(self, total: u32) -> FakeGuide {
        self.with_usage(Usage::total(total))
    }

    /// The same with this `model` in the reply.
    pub fn with_model(mut self, model: &str) -> FakeGuide {
        self.model = Some(model.to_owned());
        self
    }

    /// The same, fenced in Markdown.
    pub fn fenced(mut self) -> FakeGuide {
        self.fenced = true;
        self
    }
}

/// An HTTP answer to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// This status and JSON body.
    Json { status: u16, body: String },
    /// Close the connection.
    Hangup,
}

/// What `behaviour` answers to `request` (after any delay, which the
/// caller waits out: see [`Behaviour::Delay`]).
pub(crate) fn answer(behaviour: &Behaviour, request: &RecordedRequest, id: u64) -> Answer {
    let requested_model = request.model().unwrap_or("fake-model");
    let completion = |content: String, usage: Usage, model: Option<&str>| Answer::Json {
        status: 200,
        body: completion_body(id, model.unwrap_or(requested_model), content, usage),
    };
    match behaviour {
        Behaviour::Auto => match request.kind {
            RequestKind::Rank => completion(choice_content(&Value::Null), Usage::default(), None),
            RequestKind::Generate | RequestKind::Other => {
                let guide = FakeGuide::for_question(request.question().unwrap_or_default());
                completion(guide_content(&guide), guide.usage, None)
            }
        },
        Behaviour::Guide(guide) => {
            completion(guide_content(guide), guide.usage, guide.model.as_deref())
        }
        Behaviour::Choice(choice) => completion(choice_content(choice), Usage::default(), None),
        Behaviour::Content(text) => completion(text.clone(), Usage::default(), None),
        Behaviour::Raw { status, body } => Answer::Json {
            status: *status,
            body: body.clone(),
        },
        Behaviour::Error {
            status,
            message,
            code,
        } => Answer::Json {
            status: *status,
            body: json!({"error": {
                "message": message,
                "type": code.as_deref().unwrap_or("fake_error"),
                "code": code,
            }})
            .to_string(),
        },
        Behaviour::Delay(_, then) => answer(then, request, id),
        Behaviour::Hangup => Answer::Hangup,
    }
}

fn guide_content(guide: &FakeGuide) -> String {
    let object = json!({
        "name": guide.name,
        "description": guide.description,
        "answer": guide.answer,
    });
    if guide.fenced {
        format!("```json\n{object:#}\n```")
    } else {
        object.to_string()
    }
}

fn choice_content(choice: &Value) -> String {
    json!({ "choice": choice }).to_string()
}

fn completion_body(id: u64, model: &str, content: String, usage: Usage) -> String {
    let mut body = json!({
        "id": format!("chatcmpl-fake-{id}"),
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop",
        }],
    });
    if let (Some(usage), Some(object)) = (usage.to_json(), body.as_object_mut()) {
        object.insert("usage".to_owned(), usage);
    }
    body.to_string()
}
