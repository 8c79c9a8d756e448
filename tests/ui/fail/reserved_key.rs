use sealed_session::SessionData;

#[derive(SessionData, Default)]
struct MySession {
    #[session(rename = "_expires")]
    expires: u64,
    #[allow(non_snake_case)]
    _flashKeys: Vec<String>,
}

fn main() {}
