"""A webhook receiver in its own process for bench/webhook_lag.py (so the load generator does
not starve it): answers 200 to every POST and appends ``<arrival> <webhook-id> <timestamp>``
per request to the file named on the command line; prints its port first."""

from __future__ import annotations

import asyncio
import json
import sys
import time


async def main(path: str) -> None:
    out = open(path, "a", buffering=1)  # noqa: SIM115, ASYNC230 - one line per request, flushed

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while request := await reader.readline():
                del request
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                stamp = json.loads(body)["timestamp"]
                out.write(f"{time.time()} {headers.get('webhook-id')} {stamp}\n")
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
