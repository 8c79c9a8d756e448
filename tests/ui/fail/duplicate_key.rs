use sealed_session::SessionData;

#[derive(SessionData, Default)]
#[session(rename_all = "camelCase")]
struct MySession {
    user_id: Option<String>,
    #[session(rename = "userId")]
    legacy_user: Option<String>,
}

fn main() {}
