use sealed_session::SessionData;

#[derive(SessionData, Default)]
#[session(rename_al = "camelCase")]
struct MySession {
    #[session(renmae = "userId")]
    user_id: Option<String>,
    #[session(default, flash)]
    message: Option<String>,
}

fn main() {}
