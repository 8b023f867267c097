"""Code with repeated structure: fields, tables of constants, zero-filled buffers, tests."""

from dataclasses import dataclass

KEY = bytes([0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00])
IV = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
GRID = [
    [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0],
]
IDENTITY = [
    [1, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 1, 0],
    [0, 0, 0, 1],
]
BOARD = [
    ["", "", ""],
    ["", "", ""],
    ["", "", ""],
]
DP = [[0] * 10 for _ in range(10)]
SEPARATOR = "=" * 72
WEIGHTS = {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0, "e": 1.0, "f": 1.0, "g": 1.0, "h": 1.0}


@dataclass
class Settings:
    host: str = "localhost"
    port: int = 8080
    user: str = ""
    password: str = ""
    database: str = ""
    timeout: float = 30.0
    retries: int = 3
    verbose: bool = False
    debug: bool = False
    color: bool = False


class Vector:
    def __init__(self, x: float, y: float, z: float) -> None:
        self.x = x
        self.y = y
        self.z = z

    def __add__(self, other: "Vector") -> "Vector":
        return Vector(self.x + other.x, self.y + other.y, self.z + other.z)

    def __sub__(self, other: "Vector") -> "Vector":
        return Vector(self.x - other.x, self.y - other.y, self.z - other.z)

    def __mul__(self, k: float) -> "Vector":
        return Vector(self.x * k, self.y * k, self.z * k)

    def __truediv__(self, k: float) -> "Vector":
        return Vector(self.x / k, self.y / k, self.z / k)

    def __neg__(self) -> "Vector":
        return Vector(-self.x, -self.y, -self.z)


def parse_flags(flags: int) -> dict[str, bool]:
    return {
        "read": bool(flags & 0x01),
        "write": bool(flags & 0x02),
        "exec": bool(flags & 0x04),
        "hidden": bool(flags & 0x08),
        "system": bool(flags & 0x10),
        "archive": bool(flags & 0x20),
        "device": bool(flags & 0x40),
        "normal": bool(flags & 0x80),
    }


def test_add() -> None:
    assert Vector(1, 2, 3) + Vector(1, 1, 1) == Vector(2, 3, 4)


def test_sub() -> None:
    assert Vector(1, 2, 3) - Vector(1, 1, 1) == Vector(0, 1, 2)


def test_mul() -> None:
    assert Vector(1, 2, 3) * 2 == Vector(2, 4, 6)


def test_div() -> None:
    assert Vector(2, 4, 6) / 2 == Vector(1, 2, 3)


def test_neg() -> None:
    assert -Vector(1, 2, 3) == Vector(-1, -2, -3)


def state_machine(event: str, state: str) -> str:
    if state == "idle" and event == "start":
        return "running"
    if state == "running" and event == "pause":
        return "paused"
    if state == "paused" and event == "resume":
        return "running"
    if state == "running" and event == "stop":
        return "idle"
    if state == "paused" and event == "stop":
        return "idle"
    return state


def print_board(board: list[list[str]]) -> None:
    print("+---+---+---+")
    for row in board:
        print("| " + " | ".join(cell or " " for cell in row) + " |")
        print("+---+---+---+")


if __name__ == "__main__":
    print(SEPARATOR)
    print_board(BOARD)
    print(SEPARATOR)
