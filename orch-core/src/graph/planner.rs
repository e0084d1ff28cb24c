//! The planning model: requirements in, a checked plan out, with one retry that shows the model what
//! was wrong with its first answer.

use std::sync::Arc;

use super::{GraphError, ReadPlan, read_plan_text};
use crate::model::{ModelProvider, ModelRequest, PriceTable, ResponseAssembler};
use crate::wire::{ContentBlock, Message, PlannedTask, Role, Usage};

/// Agent name of planning calls (scripted models can match on it).
pub const PLANNER_AGENT: &str = "planner";

/// Output token limit of a planning call, unless [`Planner::with_max_tokens`] says otherwise.
pub const DEFAULT_MAX_TOKENS: u32 = 8_000;

/// Calls made before giving up: the first answer and one retry.
const ATTEMPTS: u32 = 2;

const SYSTEM_PROMPT: &str = "You are a software project planner. You decompose requirements into a plan of \
small tasks that agents can do one at a time, with dependencies between them. Reply with the plan as one JSON \
object and nothing else.";

/// How the plan must look; part of the first prompt.
const FORMAT: &str = r#"Reply with JSON of this shape:
{"tasks": [
  {"id": "task-1",
   "title": "short imperative title",
   "description": "what to do, precisely enough for an agent working alone",
   "task_type": "code | research | analysis | documentation | integration | asset",
   "complexity": "simple | medium | complex",
   "depends_on": ["ids of tasks that must be completed first"],
   "model": "optional: haiku, sonnet or opus",
   "tools": ["tools the task needs, e.g. Read, Write, Edit, Bash, Grep"],
   "verification": ["how to check the task is done"],
   "estimated_cost_usd": 0.05,
   "estimated_minutes": 10}
]}
Every task has a unique id and a title. Estimate each task's model cost in US dollars and its duration in
minutes (numbers, 0 or more) so progress can be compared with the plan. Dependencies name ids of other tasks of the plan and never form a
cycle. Tasks that do not depend on each other can run in parallel, so only add a dependency where a task
really needs another's result."#;

/// A plan the model wrote, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Drafted {
    /// The tasks.
    pub tasks: Vec<PlannedTask>,
    /// The model id called.
    pub model: String,
    /// Usage of all calls.
    pub usage: Usage,
    /// Cost of all calls in USD (0 when the price is unknown).
    pub cost_usd: f64,
    /// Calls made (1, or 2 after a retry).
    pub attempts: u32,
}

/// Asks a planning model for plans: requirements in, a checked plan out, with one retry that shows the
/// model what was wrong with its first answer.
pub struct Planner {
    provider: Arc<dyn ModelProvider>,
    model: String,
    max_tokens: u32,
    prices: Option<PriceTable>,
}

impl std::fmt::Debug for Planner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planner").field("provider", &self.provider.name()).field("model", &self.model).finish()
    }
}

impl Planner {
    /// A planner calling `model` (the model id, without provider prefix) on `provider`.
    pub fn new(provider: Arc<dyn ModelProvider>, model: impl Into<String>) -> Self {
        Self { provider, model: model.into(), max_tokens: DEFAULT_MAX_TOKENS, prices: None }
    }

    /// Prices its calls with `prices` (default: cost 0).
    pub fn with_prices(mut self, prices: PriceTable) -> Self {
        self.prices = Some(prices);
        self
    }

    /// Sets the output token limit of a call (default 8,000).
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// The model id called.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Asks for a plan of `requirements`. A reply that is not a valid plan is answered once with what is
    /// wrong with it; a second invalid reply is [`GraphError::ModelGaveUp`]. A failed call is
    /// [`GraphError::Model`] (the provider has its own retries). Stores nothing.
    pub async fn draft(&self, requirements: &str) -> Result<Drafted, GraphError> {
        let requirements = requirements.trim();
        if requirements.is_empty() {
            return Err(GraphError::Usage("the requirements are empty".into()));
        }
        let mut messages = vec![Message::user_text(format!("Requirements:\n{requirements}\n\n{FORMAT}"))];
        let mut usage = Usage::default();
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let (text, call_usage) = self.call(&messages).await?;
            usage.add(&call_usage);
            match read_plan_text(&text) {
                Ok(ReadPlan { tasks, .. }) => {
                    let cost_usd = self.prices.as_ref().and_then(|p| p.cost(&self.model, &usage)).unwrap_or(0.0);
                    return Ok(Drafted { tasks, model: self.model.clone(), usage, cost_usd, attempts: attempt });
                }
                Err(e) => {
                    tracing::debug!(attempt, error = %e, "the planning model's reply is not a valid plan");
                    last = match e {
                        GraphError::Invalid(problems) => problems.to_string(),
                        other => other.to_string(),
                    };
                    messages.push(Message { role: Role::Assistant, content: vec![ContentBlock::Text { text }] });
                    messages.push(Message::user_text(format!(
                        "That plan is invalid: {last}\nReply with the corrected plan as JSON only, in the same shape."
                    )));
                }
            }
        }
        Err(GraphError::ModelGaveUp { attempts: ATTEMPTS, last })
    }

    /// One call: the reply's text and usage.
    async fn call(&self, messages: &[Message]) -> Result<(String, Usage), GraphError> {
        let request = ModelRequest {
            model: self.model.clone(),
            system: Some(SYSTEM_PROMPT.to_owned()),
            messages: Arc::new(messages.to_vec()),
            tools: Arc::new(Vec::new()),
            max_tokens: self.max_tokens,
            thinking: None,
            agent_name: PLANNER_AGENT.to_owned(),
        };
        let response = ResponseAssembler::collect(self.provider.stream(request).await?).await?;
        Ok((response.text(), response.usage))
    }
}
