"""The subjects of each segment: identifiers, attributes, static quality, flags and scales."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from creditgrade.data.sample import identity
from creditgrade.data.sample.timeline import Timeline, params, rng


@dataclass
class Population:
    """One segment's subjects as arrays (row i of every array is subject i)."""

    segment: str
    columns: dict[str, np.ndarray]    # subject table columns besides segment/subject_id
    subject_id: np.ndarray
    token: np.ndarray                  # public reference used in doc_ref and accounts (never an RIC)
    birth: np.ndarray                  # first active month index (negative: before the window)
    static: np.ndarray                 # static part of latent quality
    sensitivity: np.ndarray            # shock sensitivity
    flags: dict[str, np.ndarray] = field(default_factory=dict)
    scale: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.subject_id)


def _choose(gen, shares, n):
    shares = np.asarray(shares, float)
    return gen.choice(len(shares), n, p=shares / shares.sum())


def _lognormal(gen, n, sd):
    return np.exp(gen.normal(0, sd, n))


def _effects(gen, n_groups, sd, group):
    return gen.normal(0, sd, n_groups)[group]


def smes(n: int, seed: int, tl: Timeline) -> Population:
    p, seg = params()["sme"], params()["segments"]["sme"]
    gen = rng(seed, "sme", "subjects")
    sectors = list(p["sectors"])
    sec = [p["sectors"][s] for s in sectors]
    si = _choose(gen, [s["share"] for s in sec], n)
    zi = _choose(gen, p["size_share"], n)
    di = gen.integers(0, len(p["districts"]), n)
    districts = np.array(p["districts"])[di]
    lo, hi = (np.datetime64(m, "D").astype(np.int64) for m in seg["founded"])
    recent = gen.random(n) < seg["founded_recent_share"]
    window0 = int(tl.first[0])
    founded = np.where(recent, gen.integers(window0, min(hi, tl.end_day - 60), n), gen.integers(lo, window0, n))
    org = gen.choice(10**8, n, replace=False)
    sid = identity.uscc(districts, org)
    pick = lambda key: np.array([s[key] for s in sec])[si]  # noqa: E731
    district_effect = np.array([p["district_effect"][d] for d in p["districts"]])[di]
    static = (pick("effect") + np.array(p["size_effect"])[zi] + district_effect
              + _effects(gen, len(p["districts"]), p["district_sd"], di) + gen.normal(0, seg["static_sd"], n))
    names = identity.concat(p["name_city"], identity.pick(gen, p["name_words"], n), pick("word"), "有限公司")
    flags = {
        "taxed": gen.random(n) < p["taxed_share"],
        "employer": gen.random(n) < np.array(p["employer_share"])[zi],
        "safety": pick("safety").astype(bool),
        "quality": pick("quality").astype(bool),
        "borrower": gen.random(n) < seg["borrower_share"],
    }
    scale = {
        "tax": np.array(p["size_tax"])[zi] * pick("tax") * _lognormal(gen, n, p["scale_sd"]["tax"]),
        "headcount": np.array(p["size_headcount"])[zi] * _lognormal(gen, n, p["scale_sd"]["headcount"]),
        "loan": np.array(p["size_loan"])[zi] * _lognormal(gen, n, p["scale_sd"]["loan"]),
        "term": np.array(p["loan_terms"])[gen.integers(0, len(p["loan_terms"]), n)],
    }
    columns = {"name": names, "district": districts, "sector": np.array(sectors)[si],
               "size": np.array(p["sizes"])[zi], "founded": founded}
    return Population("sme", columns, sid, sid, tl.month_of(founded), static, pick("shock"), flags, scale)


def _place_names(gen, n_villages: int, n_towns: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct village names (family name + place word + 村) and township names (word + 镇)."""
    p = params()["household"]
    stems = identity.concat(np.repeat(params()["names"]["surnames"], len(p["village_words"])),
                            np.tile(p["village_words"], len(params()["names"]["surnames"])))
    words = np.array(p["township_words"])
    if n_villages > len(stems) or n_towns > len(words):
        raise ValueError(f"population.toml has names for {len(stems)} villages and {len(words)} townships, "
                         f"not {n_villages} and {n_towns}")
    return (identity.concat(gen.choice(stems, n_villages, replace=False), "村"),
            identity.concat(gen.choice(words, n_towns, replace=False), "镇"))


def households(n: int, seed: int, tl: Timeline, taken: set) -> Population:
    p, seg = params()["household"], params()["segments"]["household"]
    gen = rng(seed, "household", "subjects")
    n_town = len(p["counties"]) * p["townships_per_county"]
    per_town = max(p["villages_per_township"], -(-n // (n_town * 5000)))
    county = np.repeat(np.array(p["counties"]), p["townships_per_county"])
    towns = identity.concat(county, np.char.mod("%03d", 101 + np.arange(n_town) % p["townships_per_county"]))
    vt = np.repeat(np.arange(n_town), per_town)
    villages = identity.concat(towns[vt], np.char.mod("%03d", 201 + np.arange(len(vt)) % per_town))
    vi = np.sort(gen.integers(0, len(villages), n))
    serial = np.arange(n) - np.searchsorted(vi, vi) + 1
    sid = identity.concat("H", villages[vi], np.char.mod("%04d", serial))
    _, head = identity.persons(gen, n, p["born"], params()["persons"]["birth_places"], taken)
    taken.update(head.tolist())
    members = gen.integers(p["members"][0], p["members"][1] + 1, n)
    labour = gen.binomial(members, 0.6)
    land = np.round(np.exp(gen.normal(*p["land_mu"], n)), 1)
    insured = gen.random(n) < p["insurance_share"]
    coop = gen.random(n) < p["coop_share"]
    static = (_effects(gen, len(villages), seg["village_sd"], vi) + _effects(gen, n_town, seg["township_sd"], vt[vi])
              + p["insurance_effect"] * (insured - p["insurance_share"]) + p["coop_effect"] * (coop - p["coop_share"])
              + p["labour_effect"] * (labour / members - 0.6) + p["land_effect"] * (np.log(land) - p["land_mu"][0])
              + gen.normal(0, seg["static_sd"], n))
    flags = {"taxed": gen.random(n) < seg["taxed_share"], "employer": np.zeros(n, bool),
             "safety": np.zeros(n, bool), "quality": coop, "borrower": gen.random(n) < seg["borrower_share"]}
    scale = {"tax": p["tax_per_quarter"] * _lognormal(gen, n, p["scale_sd"]["tax"]),
             "loan": p["loan"] * _lognormal(gen, n, p["scale_sd"]["loan"]) * (1 + land / 20),
             "term": np.array(p["loan_terms"])[gen.integers(0, len(p["loan_terms"]), n)]}
    village_names, town_names = _place_names(rng(seed, "household", "place-names"), len(villages), n_town)
    columns = {"name": identity.concat(identity.person_names(gen, params()["names"], n), "户"),
               "village_code": villages[vi], "township_code": towns[vt[vi]],
               "village_name": village_names[vi], "township_name": town_names[vt[vi]], "head_id": head,
               "members": members, "labour_force": labour, "land_mu": land,
               "agri_insurance": insured, "coop_member": coop}
    birth = np.full(n, -1200)
    return Population("household", columns, sid, sid, birth, static, np.ones(n), flags, scale)


def practitioners(n: int, seed: int, tl: Timeline, taken: set) -> Population:
    p, seg = params()["practitioner"], params()["segments"]["practitioner"]
    gen = rng(seed, "practitioner", "subjects")
    profs = list(p["professions"])
    prof = [p["professions"][k] for k in profs]
    pi = _choose(gen, [x["share"] for x in prof], n)
    di = gen.integers(0, len(p["districts"]), n)
    born, sid = identity.persons(gen, n, p["born"], params()["persons"]["birth_places"], taken)
    taken.update(sid.tolist())
    earliest = born + 24 * 365
    licensed = earliest + (gen.random(n) * (tl.end_day - 60 - earliest)).astype(np.int64)
    pick = lambda key: np.array([x[key] for x in prof])[pi]  # noqa: E731
    static = pick("effect") + _effects(gen, len(p["districts"]), p["district_sd"], di) + gen.normal(0, seg["static_sd"], n)
    flags = {"taxed": np.ones(n, bool), "employer": np.zeros(n, bool), "safety": np.zeros(n, bool),
             "quality": np.ones(n, bool), "borrower": gen.random(n) < seg["borrower_share"]}
    scale = {"tax": p["tax_per_quarter"] * pick("income") * _lognormal(gen, n, p["scale_sd"]["tax"]),
             "loan": p["loan"] * pick("income") * _lognormal(gen, n, p["scale_sd"]["loan"]),
             "term": np.array(p["loan_terms"])[gen.integers(0, len(p["loan_terms"]), n)],
             "sanction": pick("sanction")}
    token = identity.concat("P", np.char.mod("%08d", gen.permutation(n) + 10_000_000))
    columns = {"name": identity.person_names(gen, params()["names"], n), "district": np.array(p["districts"])[di],
               "profession": np.array(profs)[pi], "licensed_since": licensed}
    return Population("practitioner", columns, sid, token, tl.month_of(licensed), static, np.ones(n), flags, scale)
