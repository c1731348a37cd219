//! The contract's page shape: `{content, page, size, totalElements, totalPages, last}`.

use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};

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
}

/// What the contract lists by page, and how its page is described.
pub trait Listed: JsonSchema {
    /// The description of the page's schema (`{name}Page`).
    const PAGE_DESCRIPTION: &'static str;
}

/// One page of a listing. Its schema is named after the listed type (`AppointmentPage`,
/// `EventPage`, …) and described by it (see [`Listed`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "{T}Page", transform = describe_page::<T>)]
pub struct Page<T: Listed> {
    pub content: Vec<T>,
    /// 0-based page number
    #[schemars(range(min = 0))]
    pub page: i64,
    #[schemars(range(min = 1, max = 100))]
    pub size: i64,
    #[schemars(range(min = 0))]
    pub total_elements: i64,
    #[schemars(range(min = 0))]
    pub total_pages: i64,
    pub last: bool,
}

impl<T: Listed> Page<T> {
    /// The page `request` of `total` elements, holding `content`.
    pub fn new(request: PageRequest, content: Vec<T>, total: i64) -> Self {
        let total_pages = request.total_pages(total);
        Self {
            content,
            page: request.page,
            size: request.size,
            total_elements: total,
            total_pages,
            last: request.page + 1 >= total_pages,
        }
    }
}

fn describe_page<T: Listed>(schema: &mut Schema) {
    schema.insert("description".to_owned(), T::PAGE_DESCRIPTION.into());
}
