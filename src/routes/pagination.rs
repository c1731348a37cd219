//! The contract's page shape: `{content, page, size, totalElements, totalPages, last}`.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{check_fields, ApiResult, ErrorCode, FieldError};

pub const DEFAULT_SIZE: i64 = 50;
pub const MAX_SIZE: i64 = 100;

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct PageQuery {
    pub page: Option<i64>,
    pub size: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub page: i64,
    pub size: i64,
}

impl PageQuery {
    /// Checks `page >= 0` and `1 <= size <= 100`, adding what is wrong to `errors`.
    pub fn check(self, errors: &mut Vec<FieldError>) -> PageRequest {
        let page = self.page.unwrap_or(0);
        let size = self.size.unwrap_or(DEFAULT_SIZE);
        if !(0..=1_000_000).contains(&page) {
            errors.push(FieldError::new(
                "page",
                ErrorCode::InvalidRequest,
                "must be between 0 and 1000000",
            ));
        }
        if !(1..=MAX_SIZE).contains(&size) {
            errors.push(FieldError::new(
                "size",
                ErrorCode::InvalidRequest,
                "must be between 1 and 100",
            ));
        }
        PageRequest { page, size }
    }

    pub fn request(self) -> ApiResult<PageRequest> {
        let mut errors = Vec::new();
        let request = self.check(&mut errors);
        check_fields(errors).map(|()| request)
    }
}

impl PageRequest {
    pub fn offset(self) -> i64 {
        self.page * self.size
    }

    /// ` LIMIT n OFFSET m` as literals (both are checked integers): with bind parameters the
    /// planner of a prepared statement cannot tell a page is small, and sorts every row.
    pub fn limit_clause(self) -> String {
        format!(" LIMIT {} OFFSET {}", self.size, self.offset())
    }

    pub fn respond(self, content: Vec<Value>, total: i64) -> Value {
        let total_pages = (total + self.size - 1) / self.size;
        json!({
            "content": content,
            "page": self.page,
            "size": self.size,
            "totalElements": total,
            "totalPages": total_pages,
            "last": self.page + 1 >= total_pages,
        })
    }
}
