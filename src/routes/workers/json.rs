//! The shapes of `/departments/{id}/workers` on the wire, in their fields' order. The schemas
//! of openapi.json (`Worker`, `WorkerCreate`, `WorkerUpdate`) and the `WorkerId` path parameter
//! are derived from these types.

use aide::generate::GenContext;
use aide::openapi::Operation;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::datetime::format_timestamp;
use crate::error::{check_fields, required_text, ApiResult};
use crate::extract::PathParameters;
use crate::openapi::refer_parameter;
use crate::store::workers::Worker as Stored;

/// The longest worker name, in characters.
const NAME_MAX: usize = 200;

/// A staff member of a department. Serves one appointment at a time.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(example = Worker::example())]
pub struct Worker {
    pub id: i64,
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    /// A deactivated worker stays listed and keeps its appointments, but takes no new booking (422 WORKER_INACTIVE).
    pub is_active: bool,
    pub department_id: i64,
    pub livemode: bool,
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    #[schemars(extend("format" = "date-time"))]
    pub updated_at: String,
}

impl Worker {
    pub fn new(worker: Stored) -> Self {
        Self {
            id: worker.id,
            name: worker.name,
            is_active: worker.is_active,
            department_id: worker.department_id,
            livemode: worker.livemode,
            created_at: format_timestamp(worker.created_at),
            updated_at: format_timestamp(worker.updated_at),
        }
    }

    /// The contract's example worker.
    pub fn example() -> Self {
        Self {
            id: 7,
            name: "Dr. Diallo".to_owned(),
            is_active: true,
            department_id: 5,
            livemode: false,
            created_at: "2026-01-10T08:00:00.000Z".to_owned(),
            updated_at: "2026-01-10T08:00:00.000Z".to_owned(),
        }
    }
}

/// A new staff member of the department.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("examples" = [{"name": "Dr. Diallo"}]))]
pub struct WorkerCreate {
    // Optional in Rust so that a missing name is named in the 400 (the schema says required).
    /// 1 to 200 characters, not blank; stored trimmed.
    #[schemars(with = "String", length(min = 1, max = 200))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Default true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
}

/// A valid new worker.
pub struct NewWorker {
    pub name: String,
    pub is_active: bool,
}

impl WorkerCreate {
    /// The worker to create, or a 400 naming the bad field.
    pub fn parse(self) -> ApiResult<NewWorker> {
        let mut errors = Vec::new();
        let name = required_text(&mut errors, "name", self.name.as_deref(), NAME_MAX);
        check_fields(errors)?;
        Ok(NewWorker {
            name,
            is_active: self.is_active.unwrap_or(true),
        })
    }
}

/// The members to change; an absent or null member keeps its value. `isActive: true` reactivates a worker. Its appointments never change.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("examples" = [{"name": "Dr. Aminata Diallo"}, {"isActive": true}]))]
pub struct WorkerUpdate {
    /// 1 to 200 characters, not blank; stored trimmed.
    #[schemars(length(min = 1, max = 200))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
}

/// Valid changes of a worker; `None` keeps the value.
pub struct WorkerChanges {
    pub name: Option<String>,
    pub is_active: Option<bool>,
}

impl WorkerUpdate {
    /// The changes, or a 400 naming the bad field.
    pub fn parse(self) -> ApiResult<WorkerChanges> {
        let mut errors = Vec::new();
        let name = self
            .name
            .as_deref()
            .map(|name| required_text(&mut errors, "name", Some(name), NAME_MAX));
        check_fields(errors)?;
        Ok(WorkerChanges {
            name,
            is_active: self.is_active,
        })
    }
}

/// The id of a worker (`{workerId}`) in a path.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(transparent)]
pub struct WorkerId(pub i64);

/// The shared `WorkerId` parameter.
impl PathParameters for WorkerId {
    fn document(_: &mut GenContext, operation: &mut Operation) {
        refer_parameter(operation, "WorkerId");
    }
}
