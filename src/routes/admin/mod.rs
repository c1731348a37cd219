//! The operator API (ext): organizations and their live credits, behind
//! `Authorization: Bearer $MONCRENEAU_ADMIN_TOKEN`. `moncreneau admin create-org` shares
//! [`create_organization`].

pub mod json;

use aide::axum::routing::{get_with, post_with};
use aide::axum::ApiRouter;
use aide::generate::GenContext;
use aide::openapi::Operation;
use aide::transform::TransformOperation;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sqlx::PgPool;

use self::json::{
    AdminKey, LiveCreditGrantResult, Organization, OrganizationCreate, OrganizationCreated,
    OrganizationList,
};
use crate::auth::Operator;
use crate::domain::credits::CreditGrant;
use crate::domain::keys::Scope;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath};
use crate::ledger::{self, Account};
use crate::openapi::refer_response;
use crate::state::AppState;
use crate::store::{api_keys, organizations as store};

/// Test credits every new organization starts with.
pub const INITIAL_TEST_CREDITS: i64 = 100;

pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/admin/organizations",
            post_with(create, create_docs).get_with(list, list_docs),
        )
        .api_route(
            "/admin/organizations/{id}",
            get_with(retrieve, retrieve_docs),
        )
        .api_route(
            "/admin/organizations/{id}/credits",
            post_with(grant_live_credits, grant_docs),
        )
}

/// In the spec: the operator's bearer token, and its refusals (401 for a wrong token, 404 while
/// the operator API is off).
impl aide::OperationInput for Operator {
    fn operation_input(_: &mut GenContext, operation: &mut Operation) {
        operation.security.push(
            [("operatorBearer".to_owned(), Vec::new())]
                .into_iter()
                .collect(),
        );
        refer_response(operation, 401, "OperatorUnauthorized");
        refer_response(operation, 404, "OperatorNotFound");
    }
}

const OPERATOR: &str = "Operator API: `Authorization: Bearer $MONCRENEAU_ADMIN_TOKEN`; 404 when the variable is unset.";

/// Creates an organization with one `api:admin` key per mode; the clear keys are shown once.
async fn create(
    _: Operator,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<OrganizationCreate>,
) -> ApiResult<(StatusCode, Json<OrganizationCreated>)> {
    let (name, live_credits) = body.parse()?;
    let created = create_organization(&state.pool, &name, live_credits).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

fn create_docs(op: TransformOperation) -> TransformOperation {
    op.id("createOrganization")
        .summary("Create an organization (operator)")
        .description(OPERATOR)
        .tag("operator")
        .response_with::<201, Json<OrganizationCreated>, _>(|r| {
            r.description("Created, with one `api:admin` key per mode (the clear keys are shown once). The test account starts with 100 credits.")
                .example(OrganizationCreated::example())
        })
}

/// Creates an organization, its two credit accounts and its two admin keys, in one transaction.
pub async fn create_organization(
    pool: &PgPool,
    name: &str,
    live_credits: i64,
) -> ApiResult<OrganizationCreated> {
    let mut tx = pool.begin().await?;
    let id = store::insert(&mut tx, name).await?;
    let mut keys = Vec::new();
    for livemode in [false, true] {
        let account = Account {
            organization_id: id,
            livemode,
        };
        let initial = if livemode {
            live_credits
        } else {
            INITIAL_TEST_CREDITS
        };
        ledger::open(&mut tx, account, initial, "Initial credits").await?;
        let issued = api_keys::issue(
            &mut tx,
            account,
            "Default admin key",
            &[Scope::ApiAdmin],
            None,
        )
        .await?;
        keys.push(AdminKey {
            id: issued.key.id,
            key: issued.clear,
            mode: if livemode { "live" } else { "test" }.to_owned(),
            scopes: vec![Scope::ApiAdmin],
        });
    }
    tx.commit().await?;
    Ok(OrganizationCreated {
        id,
        name: name.to_owned(),
        test_credits: INITIAL_TEST_CREDITS,
        live_credits,
        api_keys: keys,
    })
}

/// Every organization, oldest first.
async fn list(_: Operator, State(state): State<AppState>) -> ApiResult<Json<OrganizationList>> {
    let organizations = store::list(&state.pool).await?;
    Ok(Json(OrganizationList {
        data: organizations.into_iter().map(Organization::new).collect(),
    }))
}

fn list_docs(op: TransformOperation) -> TransformOperation {
    op.id("listOrganizations")
        .summary("List organizations (operator)")
        .description(OPERATOR)
        .tag("operator")
        .response_with::<200, Json<OrganizationList>, _>(|r| {
            r.description("Every organization, oldest first.")
        })
}

/// One organization with both balances.
async fn retrieve(
    _: Operator,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Organization>> {
    Ok(Json(Organization::new(store::find(&state.pool, id).await?)))
}

fn retrieve_docs(op: TransformOperation) -> TransformOperation {
    op.id("getOrganization")
        .summary("Get an organization (operator)")
        .description(
            "Operator API; 404 NOT_FOUND for an unknown id or when MONCRENEAU_ADMIN_TOKEN is unset.",
        )
        .tag("operator")
        .response_with::<200, Json<Organization>, _>(|r| {
            r.description("The organization with both balances.")
        })
}

/// Adds live credits to an organization; answers the new live balance.
async fn grant_live_credits(
    _: Operator,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CreditGrant>,
) -> ApiResult<Json<LiveCreditGrantResult>> {
    let grant = body.parse()?;
    store::find(&state.pool, id).await?;
    let mut tx = state.pool.begin().await?;
    let account = Account {
        organization_id: id,
        livemode: true,
    };
    let balance = ledger::grant(&mut tx, account, grant.amount, &grant.reason).await?;
    tx.commit().await?;
    Ok(Json(LiveCreditGrantResult {
        organization_id: id,
        available_credits: balance,
        livemode: true,
    }))
}

fn grant_docs(op: TransformOperation) -> TransformOperation {
    op.id("grantLiveCredits")
        .summary("Grant live credits (operator)")
        .description("Adds live credits through a GRANT ledger line. Operator API; 404 when MONCRENEAU_ADMIN_TOKEN is unset.")
        .tag("operator")
        .response_with::<200, Json<LiveCreditGrantResult>, _>(|r| {
            r.description("The new live balance.")
                .example(LiveCreditGrantResult {
                    organization_id: 1,
                    available_credits: 150,
                    livemode: true,
                })
        })
}
