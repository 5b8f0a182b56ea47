from tests import factories


def test_code_flow_smoke(client):
    rp = factories.rp()
    factories.resident()
    browser = factories.Browser(client)
    verifier, challenge = factories.pkce_pair()
    result = browser.code_flow(rp, code_challenge=challenge, code_challenge_method="S256")
    assert "code" in result, result
    response = client.post("/token", data={
        "grant_type": "authorization_code", "code": result["code"],
        "redirect_uri": rp.redirect_uri, "code_verifier": verifier,
    }, auth=(rp.client_id, rp.client_secret))
    assert response.status_code == 200, response.text
    print(response.json)
    info = client.get("/userinfo", headers={"Authorization": f"Bearer {response.json['access_token']}"})
    print(info.status_code, info.json)
