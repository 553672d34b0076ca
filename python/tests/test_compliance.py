"""The roadmap's client-agnostic compliance test, on every client type, async and blocking,
against httpbin; plus the protocol's request and response surface."""

from __future__ import annotations

import asyncio

import pytest

import httpfleet
from httpfleet import Client, HttpClientFactory, HttpClientOptions, HttpClientType

ALL_TYPES = list(httpfleet.HttpClientType)


@pytest.mark.parametrize("client_type", ALL_TYPES, ids=lambda t: t.name)
async def test_status_and_json_endpoints_answer_on_every_client_type(client_type, httpbin):
    async with HttpClientFactory.create_client(client_type) as client:
        resp = await client.get(f"{httpbin}/status/200")
        assert resp.status_code == 200
        resp = await client.get(f"{httpbin}/json")
        assert resp.status_code == 200
        assert "slideshow" in await resp.json()
        assert resp.backend == client_type.value


@pytest.mark.parametrize("client_type", ALL_TYPES, ids=lambda t: t.name)
def test_the_blocking_client_answers_the_same(client_type, httpbin):
    with Client(client_type) as client:
        assert client.get(f"{httpbin}/status/200").status_code == 200
        assert "slideshow" in client.get(f"{httpbin}/json").json()


@pytest.mark.parametrize("client_type", ALL_TYPES, ids=lambda t: t.name)
async def test_params_headers_and_bodies_reach_the_server(client_type, httpbin):
    async with HttpClientFactory.create_client(client_type) as client:
        resp = await client.get(
            f"{httpbin}/get", params={"a": "1", "b": ["x", "y"]}, headers={"X-Fleet": "on"}
        )
        echo = await resp.json()
        assert echo["args"] == {"a": "1", "b": ["x", "y"]}
        assert echo["headers"]["X-Fleet"] == "on"
        echo = await (await client.post(f"{httpbin}/post", json={"k": [1, 2]})).json()
        assert echo["json"] == {"k": [1, 2]}
        echo = await (await client.put(f"{httpbin}/put", data={"f": "v w"})).json()
        assert echo["form"] == {"f": "v w"}
        echo = await (await client.patch(f"{httpbin}/patch", data=b"\x00raw")).json()
        assert echo["data"] == "\x00raw"
        assert (await client.delete(f"{httpbin}/delete")).status_code == 200
        head = await client.head(f"{httpbin}/get")
        assert head.status_code == 200 and head.content == b""


async def test_headers_are_case_insensitive_and_keep_every_value(httpbin):
    async with HttpClientFactory.create_client() as client:
        resp = await client.get(
            f"{httpbin}/response-headers", params=[("X-Two", "a"), ("X-Two", "b")]
        )
        assert resp.headers["x-two"] == resp.headers["X-TWO"] == "a"
        assert resp.headers.get_list("X-Two") == ["a", "b"]
        assert "content-type" in resp.headers


async def test_redirects_follow_by_default_and_not_when_asked(httpbin):
    async with HttpClientFactory.create_client() as client:
        resp = await client.get(f"{httpbin}/redirect/2")
        assert resp.status_code == 200 and resp.url.endswith("/get")
        resp = await client.get(f"{httpbin}/redirect/2", follow_redirects=False)
        assert resp.status_code == 302
        with pytest.raises(httpfleet.RedirectError):
            await client.get(f"{httpbin}/redirect/3", max_redirects=1)


@pytest.mark.parametrize("client_type", ALL_TYPES, ids=lambda t: t.name)
async def test_a_streamed_body_arrives_in_pieces(client_type, httpbin):
    async with HttpClientFactory.create_client(client_type) as client:
        async with client.stream("GET", f"{httpbin}/stream-bytes/100000?chunk_size=4096") as r:
            pieces = [p async for p in r.aiter_bytes()]
        assert sum(map(len, pieces)) == 100000 and len(pieces) > 1
    with Client(client_type) as sync:
        with sync.stream("GET", f"{httpbin}/bytes/5000") as r:
            assert len(b"".join(r.iter_bytes())) == 5000


async def test_text_honours_the_declared_charset(httpbin):
    async with HttpClientFactory.create_client() as client:
        resp = await client.get(f"{httpbin}/encoding/utf8")
        assert "∑" in await resp.text()


async def test_status_errors_carry_the_status(httpbin):
    async with HttpClientFactory.create_client() as client:
        resp = await client.get(f"{httpbin}/status/503")
        assert resp.status_code == 503
        with pytest.raises(httpfleet.StatusError) as err:
            resp.raise_for_status()
        assert err.value.status == 503


def test_ssl_context_is_refused_naming_what_to_use_instead():
    with pytest.raises(TypeError, match="verify_ssl"):
        HttpClientFactory.create_client(options=HttpClientOptions(ssl_context=object()))


def test_an_option_a_backend_cannot_honour_is_refused_when_built():
    with pytest.raises(httpfleet.UnsupportedError) as err:
        HttpClientFactory.create_client(
            HttpClientType.UREQ, HttpClientOptions(extras={"local_address": "127.0.0.1"})
        )
    assert err.value.backend == "ureq"


async def test_a_bad_url_is_an_invalid_url_error():
    async with HttpClientFactory.create_client() as client:
        with pytest.raises(httpfleet.InvalidUrlError):
            await client.get("ftp://127.0.0.1/")


def test_uvloop_runs_the_async_client(httpbin):
    uvloop = pytest.importorskip("uvloop")

    async def main():
        async with HttpClientFactory.create_client(HttpClientType.CURL) as client:
            return (await client.get(f"{httpbin}/status/200")).status_code

    assert uvloop.run(main()) == 200
    assert asyncio.run(main()) == 200
