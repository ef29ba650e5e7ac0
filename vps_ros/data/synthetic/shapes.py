"""What each kind of object looks like: coloured polygons on the faces of its box.

A point is given as fractions (ax, ay, az) of the box: ax across (0 = left side x0,
1 = right side x1), ay up (0 = ground, 1 = top), az along the street (0 = the face nearest
the camera, 1 = the far face). The renderer turns fractions into metres and projects
them, so one description serves every distance and viewing angle. Parts are listed back
to front; a part whose face the camera cannot see is left out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scene import Body, Look

GLASS = (38, 46, 58)
TYRE = (22, 22, 24)
PLATE = (226, 226, 216)
UNDER = (46, 46, 50)
_CIRCLE = np.stack([np.cos(np.linspace(0, 2 * np.pi, 16, endpoint=False)),
                    np.sin(np.linspace(0, 2 * np.pi, 16, endpoint=False))], axis=1)


MIN_CHANNEL = 8                 # the renderer finds drawn pixels as non-zero grey values


@dataclass(frozen=True)
class Part:
    points: np.ndarray          # (n, 3) box fractions
    color: tuple[int, int, int]
    stroke: float = 0.0         # 0: filled polygon; else a line this many metres wide
    closed: bool = True

    def __post_init__(self) -> None:
        if min(self.color) < MIN_CHANNEL:
            raise ValueError(f"part colour {self.color} is too dark to be told from an "
                             f"empty patch")


@dataclass(frozen=True)
class View:
    """Which faces of a box the camera sees."""

    side: int | None            # 0: the left face (x0) faces the camera, 1: the right face, None
    top: bool                   # the camera is above the box


def tone(color, k: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(MIN_CHANNEL, c * k))) for c in color)


def _quad(a0, b0, a1, b1, face: str, s: float = 0.0) -> np.ndarray:
    """Rectangle [a0, a1] x [b0, b1] on a face: 'near' (a across, b up), 'side' (a along
    the street on face ax = s, b up), 'top' (a across, b along) or 'mid' (billboard plane
    through the box's middle)."""
    return _on_face(np.array([[a0, b0], [a1, b0], [a1, b1], [a0, b1]], float), face, s)


def _on_face(ab: np.ndarray, face: str, s: float = 0.0) -> np.ndarray:
    a, b = ab[:, 0], ab[:, 1]
    if face == "near":
        return np.stack([a, b, np.zeros_like(a)], axis=1)
    if face == "mid":
        return np.stack([a, b, np.full_like(a, 0.5)], axis=1)
    if face == "side":
        return np.stack([np.full_like(a, s), b, a], axis=1)
    return np.stack([a, np.full_like(a, s), b], axis=1)          # top: plane ay = s


def _ellipse(ca, cb, ra, rb, face: str, s: float = 0.0, radii=None) -> np.ndarray:
    scale = np.ones(len(_CIRCLE)) if radii is None else np.resize(np.asarray(radii), len(_CIRCLE))
    ab = np.stack([ca + ra * scale * _CIRCLE[:, 0], cb + rb * scale * _CIRCLE[:, 1]], axis=1)
    return _on_face(np.clip(ab, 0, 1), face, s)


def parts(body: Body, view: View, gait: float) -> list[Part]:
    """The parts of ``body`` seen with ``view``; ``gait`` animates legs and pedals."""
    return _KINDS[body.kind](body, view, gait)


def _car(body: Body, view: View, gait: float) -> list[Part]:
    paint = body.look.colors[0]
    front = body.facing == "backward"
    out = []
    if view.top:
        out.append(Part(_on_face(np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float), "top", 0.6),
                        tone(paint, 1.05)))
        roof = np.array([[.1, .24], [.9, .24], [.9, .76], [.1, .76]])
        out.append(Part(_on_face(roof, "top", 1.0), tone(paint, 1.1)))
    if view.side is not None:
        s = float(view.side)
        inner = 0.1 if view.side == 0 else 0.9
        out.append(Part(_quad(0, 0, 1, .6, "side", s), tone(paint, 0.78)))
        out.append(Part(np.array([[s, .6, .02], [s, .6, .98], [inner, 1, .76], [inner, 1, .24]]),
                        tone(GLASS, 1.25)))
        for a0 in (.1, .72):
            out.append(Part(_quad(a0, 0, a0 + .18, .32, "side", s), TYRE))
    out.append(Part(np.array([[0, .6, 0], [1, .6, 0], [.9, 1, .24], [.1, 1, .24]]), paint))
    out.append(Part(np.array([[.07, .63, .02], [.93, .63, .02], [.86, .97, .22], [.14, .97, .22]]),
                    GLASS))
    out.append(Part(_quad(0, 0, 1, .6, "near"), paint))
    out.append(Part(_quad(0, .1, 1, .2, "near"), tone(paint, 0.55)))
    lamp = (236, 232, 196) if front else (196, 28, 28)
    out.append(Part(_quad(.03, .4, .2, .52, "near"), lamp))
    out.append(Part(_quad(.8, .4, .97, .52, "near"), lamp))
    if front:
        out.append(Part(_quad(.3, .36, .7, .5, "near"), tone(paint, 0.35)))
    out.append(Part(_quad(.38, .22, .62, .33, "near"), PLATE))
    out.append(Part(_quad(.05, 0, .2, .12, "near"), TYRE))
    out.append(Part(_quad(.8, 0, .95, .12, "near"), TYRE))
    return out


def _truck(body: Body, view: View, gait: float) -> list[Part]:
    cargo, cab = body.look.colors[0], body.look.colors[1]
    front = body.facing == "backward"
    out = []
    if view.side is not None:
        s = float(view.side)
        out.append(Part(_quad(0, 0, 1, .16, "side", s), UNDER))
        cab_at, box_at = ((0, .22), (.24, 1)) if front else ((.78, 1), (0, .76))
        out.append(Part(_quad(box_at[0], .16, box_at[1], 1, "side", s), tone(cargo, 0.8)))
        stripe = _quad(box_at[0] + .02, .55, box_at[1] - .02, .62, "side", s)
        out.append(Part(stripe, tone(cab, 0.7)))
        out.append(Part(_quad(cab_at[0], .16, cab_at[1], .84, "side", s), tone(cab, 0.8)))
        out.append(Part(_quad(cab_at[0] + .05, .55, cab_at[1] - .05, .8, "side", s), GLASS))
        for a0 in ((.05, .3, .84) if front else (.06, .2, .84)):
            out.append(Part(_quad(a0, 0, a0 + .1, .17, "side", s), TYRE))
    out.append(Part(_quad(0, 0, 1, .16, "near"), UNDER))
    if front:
        out.append(Part(_quad(0, .84, 1, 1, "near"), cargo))
        out.append(Part(_quad(0, .16, 1, .84, "near"), cab))
        out.append(Part(_quad(.07, .52, .93, .8, "near"), GLASS))
        out.append(Part(_quad(.3, .2, .7, .4, "near"), tone(cab, 0.4)))
        lamp = (236, 232, 196)
    else:
        out.append(Part(_quad(0, .16, 1, 1, "near"), cargo))
        out.append(Part(_quad(.49, .2, .51, .96, "near"), tone(cargo, 0.6)))
        out.append(Part(_quad(.03, .9, .97, .93, "near"), tone(cargo, 0.8)))
        lamp = (196, 28, 28)
    out.append(Part(_quad(.02, .17, .13, .24, "near"), lamp))
    out.append(Part(_quad(.87, .17, .98, .24, "near"), lamp))
    out.append(Part(_quad(.06, 0, .24, .13, "near"), TYRE))
    out.append(Part(_quad(.76, 0, .94, .13, "near"), TYRE))
    return out


def _head(look: Look, ca: float, face: str = "mid") -> list[Part]:
    skin, hair = look.colors[2], look.colors[3]
    return [Part(_ellipse(ca, .915, .16, .085, face), skin),
            Part(_ellipse(ca, .94, .165, .06, face)[:9], hair)]


def _mid(*points: tuple[float, float]) -> np.ndarray:
    """A polygon on the billboard plane through a body's middle."""
    return _on_face(np.array(points, float), "mid")


def _pedestrian(body: Body, view: View, gait: float) -> list[Part]:
    top, legs = body.look.colors[0], body.look.colors[1]
    swing = np.sin(gait)
    if body.facing in ("left", "right"):                   # seen from the side, crossing
        d = 1.0 if body.facing == "right" else -1.0
        out = []
        for sign, shade in ((1, 0.8), (-1, 1.0)):
            foot = .5 + d * sign * .3 * swing
            out.append(Part(_mid((.42, .52), (.58, .52), (foot + .07, 0), (foot - .07, 0)),
                            tone(legs, shade)))
        out.append(Part(_mid((.32, .48), (.68, .48), (.66, .83), (.34, .83)), top))
        hand = .5 - d * .22 * swing
        out.append(Part(_mid((.44, .81), (.56, .81), (hand + .05, .52), (hand - .05, .52)),
                        tone(top, 0.8)))
        return out + _head(body.look, .5)
    lift = .03 * swing
    left, right = max(0, lift), max(0, -lift)
    return [Part(_mid((.22, left), (.47, left), (.48, .5), (.24, .5)), legs),
            Part(_mid((.53, right), (.78, right), (.76, .5), (.52, .5)), legs),
            Part(_mid((.02, .52), (.16, .52), (.17, .81), (.08, .81)), tone(top, 0.85)),
            Part(_mid((.84, .52), (.98, .52), (.92, .81), (.83, .81)), tone(top, 0.85)),
            Part(_mid((.18, .48), (.82, .48), (.86, .83), (.14, .83)), top),
            *_head(body.look, .5)]


def _bike_profile(look: Look, face: str, s: float, gait: float, mirror: bool) -> list[Part]:
    """A bicycle and its rider seen from the side, on a face whose first coordinate runs
    along the bike."""
    shirt, pants, skin, frame = look.colors[0], look.colors[1], look.colors[2], look.colors[4]

    def at(a: float, b: float) -> list[float]:
        return [1 - a if mirror else a, b]

    def path(*points) -> np.ndarray:
        return _on_face(np.array([at(a, b) for a, b in points]), face, s)

    pedal = .08 * np.sin(gait)
    out = [Part(_ellipse(at(.19, 0)[0], .19, .17, .18, face, s), TYRE, stroke=0.06),
           Part(_ellipse(at(.81, 0)[0], .19, .17, .18, face, s), TYRE, stroke=0.06),
           Part(path((.19, .19), (.45, .19), (.42, .5), (.19, .19)), frame, stroke=0.05,
                closed=False),
           Part(path((.45, .19), (.75, .5), (.81, .19)), frame, stroke=0.05, closed=False),
           Part(path((.42, .5), (.75, .5), (.78, .58)), frame, stroke=0.04, closed=False),
           Part(path((.4, .52), (.47, .52), (.47 + pedal, .14), (.41 + pedal, .14)), pants),
           Part(path((.36, .5), (.5, .5), (.7, .8), (.57, .84)), shirt),
           Part(path((.62, .78), (.68, .76), (.76, .58), (.72, .56)), tone(shirt, 0.8))]
    head = _ellipse(at(.66, 0)[0], .9, .07, .07, face, s)
    return out + [Part(head, skin)]


def _cyclist(body: Body, view: View, gait: float) -> list[Part]:
    look = body.look
    if body.facing in ("left", "right"):
        return _bike_profile(look, "mid", 0.0, gait, mirror=body.facing == "left")
    out = []
    if view.side is not None:
        out += _bike_profile(look, "side", float(view.side), gait, mirror=body.facing == "backward")
    shirt, pants, skin = look.colors[0], look.colors[1], look.colors[2]
    pedal = .06 * np.sin(gait)
    out += [Part(_quad(.44, 0, .56, .37, "near"), TYRE),
            Part(_on_face(np.array([[.25, .22 + pedal], [.42, .22 + pedal], [.42, .52], [.3, .52]]),
                          "near"), pants),
            Part(_on_face(np.array([[.58, .22 - pedal], [.75, .22 - pedal], [.7, .52], [.58, .52]]),
                          "near"), pants),
            Part(_on_face(np.array([[.18, .5], [.82, .5], [.76, .8], [.24, .8]]), "near"), shirt),
            Part(_ellipse(.5, .885, .17, .075, "near"), skin),
            Part(_ellipse(.5, .9, .18, .07, "near")[:9], look.colors[4])]
    return out


def _tree(body: Body, view: View, gait: float) -> list[Part]:
    leaves, bark = body.look.colors
    return [Part(_on_face(np.array([[.46, 0], [.54, 0], [.53, .55], [.47, .55]]), "mid"), bark),
            Part(_ellipse(.5, .7, .5, .3, "mid", radii=body.look.shape), leaves)]


def _hedge(body: Body, view: View, gait: float) -> list[Part]:
    green = body.look.colors[0]
    out = []
    if view.top:
        out.append(Part(_on_face(np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float), "top", 1.0),
                        tone(green, 1.15)))
    if view.side is not None:
        out.append(Part(_quad(0, 0, 1, 1, "side", float(view.side)), tone(green, 0.85)))
    out.append(Part(_quad(0, 0, 1, 1, "near"), green))
    return out


def _kiosk(body: Body, view: View, gait: float) -> list[Part]:
    wall, poster = body.look.colors
    out = []
    if view.top:
        out.append(Part(_on_face(np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float), "top", 1.0),
                        tone(wall, 0.6)))
    if view.side is not None:
        s = float(view.side)
        out.append(Part(_quad(0, 0, 1, 1, "side", s), tone(wall, 0.85)))
        out.append(Part(_quad(.08, .35, .92, .8, "side", s), poster))
        out.append(Part(_quad(0, .9, 1, 1, "side", s), tone(wall, 0.5)))
    out.append(Part(_quad(0, 0, 1, 1, "near"), wall))
    out.append(Part(_quad(.12, .45, .88, .78, "near"), GLASS))
    out.append(Part(_quad(0, .9, 1, 1, "near"), tone(wall, 0.5)))
    return out


_KINDS = {"car": _car, "truck": _truck, "pedestrian": _pedestrian, "cyclist": _cyclist,
          "tree": _tree, "hedge": _hedge, "kiosk": _kiosk}
