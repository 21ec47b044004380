//! One module per page. Each handler starts with the admin's checks (who, role, CSRF), reads
//! or changes what it must off the async workers, and renders plain HTML.

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod explain;
pub mod guests;
pub mod login;
pub mod logs;
pub mod overview;
pub mod people;
pub mod policy;
pub mod reviews;
pub mod setup;

use crate::app::Fields;
use axum::response::Response;

/// A form body as [`Fields`].
pub(crate) type FormBody = axum::Form<Vec<(String, String)>>;

pub(crate) fn fields(form: FormBody) -> Fields {
    Fields(form.0)
}

/// Either page: the result every handler returns.
pub(crate) type Page = Result<Response, Response>;
