//! The contract's page shape: `{content, page, size, totalElements, totalPages, last}`.

use serde::Deserialize;
use serde_json::{json, Value};

use aide::generate::GenContext;
use aide::openapi::Operation;

use crate::error::{check_fields, ApiResult, ErrorCode, FieldError};
use crate::extract::QueryParameters;
use crate::openapi::refer_parameter;

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

/// The shared `page` and `size` parameters of the spec.
impl QueryParameters for PageQuery {
    fn document(_: &mut GenContext, operation: &mut Operation) {
        refer_parameter(operation, "Page");
        refer_parameter(operation, "Size");
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

    /// How many pages `total` elements fill.
    pub fn total_pages(self, total: i64) -> i64 {
        (total + self.size - 1) / self.size
    }

    pub fn respond(self, content: Vec<Value>, total: i64) -> Value {
        let total_pages = self.total_pages(total);
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
