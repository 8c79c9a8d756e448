use sealed_session::SessionData;

#[derive(SessionData, Default)]
struct MySession<'a> {
    user_id: Option<&'a str>,
}

fn main() {}
