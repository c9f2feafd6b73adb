from image_repo import create_app

ORIGIN = "https://app.example"


def test_cors_is_off_by_default(client):
    response = client.get("/", headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_allow_listed_origin_gets_cors_headers(app_config):
    client = create_app({**app_config, "CORS_ORIGINS": [ORIGIN]}).test_client()
    response = client.get("/", headers={"Origin": ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = {
        h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert {"etag", "x-pagination", "link", "retry-after"} <= exposed


def test_other_origins_get_no_cors_headers(app_config):
    client = create_app({**app_config, "CORS_ORIGINS": [ORIGIN]}).test_client()
    response = client.get("/", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_preflight_for_allowed_origin(app_config):
    client = create_app({**app_config, "CORS_ORIGINS": [ORIGIN]}).test_client()
    response = client.options(
        "/",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-API-Key",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "x-api-key" in response.headers["Access-Control-Allow-Headers"].lower()
