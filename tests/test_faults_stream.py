"""Fault campaign on the data path: damaged notification streams through the real pipeline.

One simulated session (seated hip rotation, right leg, 6 reps, 9-axis sensors at 100 Hz, ATT MTU
247 so 13 samples per notification, ground truth known) is damaged the way the field damages BLE
streams (tests/fault_injection.py) and pushed through the path the product uses: ``Ingest`` then
``analyze_imu`` + ``detect_reps`` (``sensorhub analyze``), and for the live-critical faults
``Ingest`` then ``OnlinePipeline`` + ``RepDetector`` notification by notification (the service).

Each test asserts what the user would see — stream statistics, gap flags, hip rotation against the
truth outside the damaged spans, reps and their peaks, incomplete attempts — and that nothing raises.
Expected outcomes that the motion stage does not meet yet are marked ``xfail(strict=True)`` with the
cause, so they turn into failures the moment the cause is fixed (docs/reliability.md, "Open").
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from fault_injection import (
    Injected,
    Outcome,
    corrupt,
    drop,
    duplicate,
    matching_rep,
    packet_loss,
    pause,
    reboot,
    reorder,
    rotation_error_deg,
    run_batch,
    run_online,
)

from sensorhub.drills.reps import Rep
from sensorhub.motion.align import DEFAULT_MAX_BRIDGE_S
from sensorhub.samples import ImuSamples
from sensorhub.sim import SimConfig, SimulatedSession, simulate
from sensorhub.sim.truth import TruthRep

PEAK_TOL_DEG = 3.0
"""Rep peaks against the truth: the tolerance the fault-free end-to-end tests use."""
ROT_RMS_TOL_DEG = 2.0
"""Hip rotation RMS error vs truth outside faulty spans (fault-free runs reach 0.4°)."""


pytestmark = pytest.mark.usefixtures("quiet_sensorhub_logs")


@pytest.fixture(scope="module")
def session() -> SimulatedSession:
    return simulate(SimConfig(seed=5, reps=6, compensation_reps=(3,)))


@pytest.fixture(scope="module")
def clean(session: SimulatedSession) -> Outcome:
    return run_batch(session, session.notifications)


def ids(session: SimulatedSession) -> dict[str, str]:
    return {seg: s.sensor_id for seg, s in session.sensors.items()}


def drill_mask(session: SimulatedSession, t_s: np.ndarray) -> np.ndarray:
    return (t_s > session.scenario.drill_start_s) & (t_s < session.scenario.drill_end_s)


def gaps_of(x: ImuSamples) -> np.ndarray:
    """The ingest always sets ``gap_before``."""
    assert x.gap_before is not None
    return x.gap_before


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


def assert_rep_peaks(reps: Sequence[Rep], truth: Sequence[TruthRep]) -> None:
    """Every true rep in ``truth`` is detected once with both peaks within PEAK_TOL_DEG."""
    for tr in truth:
        rep = matching_rep(reps, tr.t_start, tr.t_end)
        assert rep is not None, f"rep {tr.t_start:.1f}-{tr.t_end:.1f} s not detected"
        assert rep.peak_internal_rotation == pytest.approx(tr.peak_internal_rotation, abs=PEAK_TOL_DEG)
        assert rep.peak_external_rotation == pytest.approx(tr.peak_external_rotation, abs=PEAK_TOL_DEG)


def untouched(truth: Sequence[TruthRep], spans: Sequence[tuple[float, float]], margin_s: float) -> list[TruthRep]:
    return [r for r in truth if all(r.t_end + margin_s < a or r.t_start - margin_s > b for a, b in spans)]


def loss_between_first_and_last(injected: Injected, sid: str, received_first: int, received_last: int) -> int:
    return sum(1 for d in injected.dropped_seq.get(sid, ()) if received_first < d < received_last)


def inner_losses(session: SimulatedSession, seg: str, dropped: set[int]) -> set[int]:
    """Dropped packets between the first and the last received one: those leave a seq gap, others cannot."""
    received = set(range(session.sensors[seg].link.packets_sent)) - dropped
    return {d for d in dropped if min(received) < d < max(received)}


def check_loss_stats(session: SimulatedSession, injected: Injected, out: Outcome) -> None:
    """Loss counted exactly; one gap flag per run of lost packets; nothing else mis-counted."""
    for seg, sid in ids(session).items():
        st = out.stats[seg]
        dropped = injected.dropped_seq.get(sid, set())
        sent = session.sensors[seg].link.packets_sent
        inner = inner_losses(session, seg, dropped)
        assert st.packets_lost == len(inner), seg
        assert st.packets_received == sent - len(dropped), seg
        assert st.gaps == sum(1 for d in inner if d - 1 not in inner), seg
        assert st.duplicates == st.reordered == st.late == st.resets == st.inconsistent == 0, seg
        assert st.loss_fraction == pytest.approx(len(inner) / (len(inner) + st.packets_received))
        x = out.samples[seg]
        assert np.all(np.diff(x.t_s) > 0)


def check_gaps_not_bridged(out: Outcome, segment_samples_t: np.ndarray, gap_before: np.ndarray) -> None:
    """Grid points inside every flagged gap are flagged; inside gaps the motion stage does not bridge
    (longer than ``align.DEFAULT_MAX_BRIDGE_S``) the angles are NaN."""
    for i in np.flatnonzero(gap_before):
        a, b = segment_samples_t[i - 1], segment_samples_t[i]
        inside = (out.t_s > a + 1e-6) & (out.t_s < b - 1e-6)
        assert out.gap[inside].all(), f"gap {a:.3f}-{b:.3f} s not flagged in the angle series"
        if b - a > DEFAULT_MAX_BRIDGE_S:
            assert np.isnan(out.hip_rotation_deg[inside]).all(), f"gap {a:.3f}-{b:.3f} s bridged"


# -- the fault-free reference ----------------------------------------------------------------------------


def test_fault_free_reference_is_accurate(session: SimulatedSession, clean: Outcome) -> None:
    """The yardstick for every fault below: 6 reps within tolerance, sub-degree angle error."""
    m = drill_mask(session, clean.t_s)
    assert rms(rotation_error_deg(session, clean.t_s, clean.hip_rotation_deg)[m]) < 1.0
    assert len(clean.reps) == 6 and not clean.incomplete
    assert_rep_peaks(clean.reps, session.reps)
    assert all(st.packets_lost == 0 and st.gaps == 0 for st in clean.stats.values())


# -- packet loss -------------------------------------------------------------------------------------------


def assert_every_rep_accounted_for(out: Outcome, truth: Sequence[TruthRep]) -> None:
    """Each true rep is either counted or reported incomplete; nothing is invented or counted twice."""
    assert len(out.reps) <= len(truth)
    for tr in truth:
        counted = matching_rep(out.reps, tr.t_start, tr.t_end) is not None
        reported = any(min(r.t_end, tr.t_end) > max(r.t_start, tr.t_start) for r in out.incomplete)
        assert counted or reported, f"rep {tr.t_start:.1f}-{tr.t_end:.1f} s vanished without a trace"


def long_gaps(out: Outcome, longer_than_s: float) -> list[tuple[float, float]]:
    return [(x.t_s[i - 1], x.t_s[i]) for x in out.samples.values() for i in np.flatnonzero(gaps_of(x))
            if x.t_s[i] - x.t_s[i - 1] > longer_than_s]


@pytest.mark.parametrize("mean_burst", [1.0, 4.0], ids=["random", "bursts"])
def test_20_percent_loss_during_the_drill(session: SimulatedSession, mean_burst: float) -> None:
    """20 % of the packets of both sensors lost during the drill (after calibration)."""
    injected = packet_loss(session.notifications, 0.2, mean_burst, np.random.default_rng(1),
                           t_from_s=session.scenario.drill_start_s)
    out = run_batch(session, injected.notifications)
    check_loss_stats(session, injected, out)
    for seg in ("pelvis", "thigh"):
        x = out.samples[seg]
        check_gaps_not_bridged(out, x.t_s, gaps_of(x))
    err = rotation_error_deg(session, out.t_s, out.hip_rotation_deg)
    ok = drill_mask(session, out.t_s) & ~out.gap & np.isfinite(err)
    assert rms(err[ok]) < ROT_RMS_TOL_DEG
    assert_every_rep_accounted_for(out, session.reps)
    # A rep with a gap longer than the detector's 1 s limit is never counted.
    for a, b in long_gaps(out, 1.0):
        assert not any(r.t_start < a and b < r.t_end for r in out.reps)


# M2 (fixed): with the causal batch filter a 0.4-0.7 s gap during fast rotation left the thigh up to 7° off
# (rep 4's internal peak 40.5°, truth 34.3°); the batch causal filter now restarts after such gaps
# (pipeline.BATCH_CAUSAL_RESTART).
@pytest.mark.parametrize("offline", [
    pytest.param(False, id="causal"),
    pytest.param(True, id="offline"),
])
def test_reps_without_a_long_gap_keep_their_peaks_under_random_loss(session: SimulatedSession, offline: bool) -> None:
    injected = packet_loss(session.notifications, 0.2, 1.0, np.random.default_rng(1),
                           t_from_s=session.scenario.drill_start_s)
    out = run_batch(session, injected.notifications, offline=offline)
    intact = untouched(session.reps, long_gaps(out, 1.0), 0.5)
    assert len(intact) == 6
    assert_rep_peaks(out.reps, intact)


def test_reps_without_a_long_gap_keep_their_peaks_under_burst_loss(session: SimulatedSession) -> None:
    injected = packet_loss(session.notifications, 0.2, 4.0, np.random.default_rng(1),
                           t_from_s=session.scenario.drill_start_s)
    out = run_batch(session, injected.notifications)
    intact = untouched(session.reps, long_gaps(out, 1.0), 0.5)
    assert len(intact) >= 2
    assert_rep_peaks(out.reps, intact)


def test_20_percent_loss_during_calibration_still_gives_a_usable_session() -> None:
    """M1 (fixed): 20 % random loss during the calibration protocol at 13 samples per packet. The
    gyroscope integrated across the gaps used to drift 40° over the swings, which flipped the thigh
    frame (hip flexion -93°) and left a session with 0 reps and no word."""
    lossy = simulate(SimConfig(seed=5, reps=6, compensation_reps=(3,), loss=0.2))
    out = run_batch(lossy, lossy.notifications)
    assert all(st.packets_lost > 50 for st in out.stats.values())
    m = drill_mask(lossy, out.t_s)
    assert np.nanmedian(out.hip_flexion_deg[m]) > 60.0
    assert len(out.reps) >= 4 or out.incomplete


@pytest.mark.parametrize("path", ["batch", "online"])
@pytest.mark.parametrize(("loss", "mean_burst"), [(0.2, 1.0), (0.1, 3.0)], ids=["random", "bursts"])
def test_loss_during_calibration_with_large_packets_keeps_the_frames(path: str, loss: float, mean_burst: float) -> None:
    """M1 on both paths: 20 % random loss, and 10 % in bursts of 3, over the whole session at 13
    samples per packet (before the fix all four runs gave hip flexion -93° and 0 reps). The
    calibration verdict is good, the thigh's flexion is the seated one, and reps are counted."""
    lossy = simulate(SimConfig(seed=5, reps=6, compensation_reps=(3,), loss=loss, loss_burst=mean_burst))
    out = run_batch(lossy, lossy.notifications) if path == "batch" else run_online(lossy, lossy.notifications)
    if out.angles is not None:
        cal = out.angles.diagnostics.calibration
        assert cal is not None and cal.quality.ok, cal.quality.advice if cal else None
    assert np.nanmedian(out.hip_flexion_deg[drill_mask(lossy, out.t_s)]) > 60.0
    assert len(out.reps) >= 5
    if mean_burst == 1.0:
        assert len(out.reps) == 6
        assert_rep_peaks(out.reps, lossy.reps)


def test_loss_during_calibration_at_small_packets_is_harmless(session: SimulatedSession) -> None:
    """The same 20 % (in bursts of 3) at MTU 65 (3 samples per packet): calibration and reps survive."""
    small = simulate(SimConfig(seed=5, reps=6, compensation_reps=(3,), mtu=65, loss=0.2, loss_burst=3.0))
    out = run_batch(small, small.notifications)
    assert all(st.packets_lost > 50 for st in out.stats.values())
    assert np.nanmedian(out.hip_flexion_deg[drill_mask(small, out.t_s)]) > 60.0
    assert len(out.reps) == 6
    assert_rep_peaks(out.reps, small.reps)


# -- duplicates, reordering, corruption ---------------------------------------------------------------------


def test_duplicates_are_dropped_and_change_nothing(session: SimulatedSession, clean: Outcome) -> None:
    injected = duplicate(session.notifications, 0.1, np.random.default_rng(2))
    out = run_batch(session, injected.notifications)
    for seg, sid in ids(session).items():
        assert out.stats[seg].duplicates == injected.count[sid] > 20
        assert out.stats[seg].packets_lost == 0 and out.stats[seg].gaps == 0
        assert np.array_equal(out.samples[seg].acc_m_s2, clean.samples[seg].acc_m_s2)
        assert np.allclose(out.samples[seg].t_s, clean.samples[seg].t_s, atol=1e-9)
    np.testing.assert_array_equal(out.hip_rotation_deg, clean.hip_rotation_deg)
    assert [r.peak_internal_rotation for r in out.reps] == [r.peak_internal_rotation for r in clean.reps]


def test_reordered_packets_are_put_back_and_change_nothing(session: SimulatedSession, clean: Outcome) -> None:
    injected = reorder(session.notifications, 0.15, np.random.default_rng(3))
    out = run_batch(session, injected.notifications)
    for seg, sid in ids(session).items():
        st = out.stats[seg]
        assert st.reordered == injected.count[sid] > 20
        assert st.packets_lost == st.late == st.gaps == 0
        assert np.array_equal(out.samples[seg].acc_m_s2, clean.samples[seg].acc_m_s2)
        # Delayed packets raise some bin minima of the clock map's envelope: times move a little.
        dt = np.abs(out.samples[seg].t_s - clean.samples[seg].t_s)
        assert np.median(dt) < 1e-3 and dt.max() < 1e-2
    assert len(out.reps) == 6
    assert_rep_peaks(out.reps, session.reps)


def test_corrupted_and_truncated_notifications_are_counted_as_malformed(session: SimulatedSession) -> None:
    injected = corrupt(session.notifications, 0.05, np.random.default_rng(4))
    out = run_batch(session, injected.notifications)
    for seg, sid in ids(session).items():
        st = out.stats[seg]
        n_bad = injected.count[sid]
        assert st.malformed == n_bad > 10
        assert st.last_error is not None and st.last_error.startswith("data packet:")
    # A rejected packet is a lost packet: counted, flagged, not bridged.
    check_loss_stats_malformed(session, injected, out)
    m = drill_mask(session, out.t_s) & ~out.gap
    assert rms(rotation_error_deg(session, out.t_s, out.hip_rotation_deg)[m & np.isfinite(out.hip_rotation_deg)]) < ROT_RMS_TOL_DEG
    assert len(out.reps) == 6
    assert_rep_peaks(out.reps, session.reps)


def check_loss_stats_malformed(session: SimulatedSession, injected: Injected, out: Outcome) -> None:
    for seg, sid in ids(session).items():
        st = out.stats[seg]
        sent = session.sensors[seg].link.packets_sent
        inner = inner_losses(session, seg, injected.dropped_seq.get(sid, set()))
        assert st.packets_lost == len(inner)
        assert st.packets_received == sent - injected.count[sid]
        assert st.gaps == sum(1 for d in inner if d - 1 not in inner)


# -- sensor reboot, silence, disconnect ---------------------------------------------------------------------


def test_sensor_reboot_mid_rep_starts_a_new_clock_epoch(session: SimulatedSession, clean: Outcome) -> None:
    """The thigh sensor reboots in the middle of rep 3 and streams again 1.5 s later, seq and µs clock restarted."""
    r3 = session.reps[2]
    t_boot = 0.5 * (r3.t_start + r3.t_end)
    injected = reboot(session.notifications, ids(session)["thigh"], t_boot, 1.5, np.random.default_rng(5))
    out = run_batch(session, injected.notifications)
    st = out.stats["thigh"]
    assert st.resets == 1 and st.inconsistent == 0 and st.malformed == 0 and st.packets_lost == 0
    x = out.samples["thigh"]
    assert np.all(np.diff(x.t_s) > 0)
    # The reboot is one flagged gap of about the downtime, at the right place.
    (i,) = np.flatnonzero(gaps_of(x))
    assert t_boot - 0.2 < x.t_s[i - 1] < t_boot + 0.01
    assert x.t_s[i] - x.t_s[i - 1] == pytest.approx(1.5, abs=0.2)
    check_gaps_not_bridged(out, x.t_s, gaps_of(x))
    # After the reboot the re-anchored clock puts samples on their true times again.
    true_t = session.sensors["thigh"].readings.t_true_s
    after = x.t_s > t_boot + 5.0
    idx = np.clip(np.searchsorted(true_t, x.t_s[after]), 1, len(true_t) - 1)
    err_s = np.minimum(np.abs(true_t[idx] - x.t_s[after]), np.abs(true_t[idx - 1] - x.t_s[after]))
    # Within the 0-10 ms that docs/ingest.md gives for a young clock epoch.
    assert np.median(err_s) < 6e-3 and err_s.max() < 10e-3
    # Rep 3 is not counted but reported; the reps before it and those well after are intact.
    assert matching_rep(out.reps, r3.t_start, t_boot) is None
    assert any("data gap" in r.reason and r.t_start < t_boot for r in out.incomplete)
    assert_rep_peaks(out.reps, [r for r in session.reps if r.t_end < t_boot or r.t_start > t_boot + 1.5 + 8.0])
    assert_every_rep_accounted_for(out, session.reps)


def test_a_sensor_that_goes_silent_leaves_nan_angles_not_held_values(session: SimulatedSession) -> None:
    """The thigh sensor stops for good in the middle of rep 4; the pelvis keeps streaming."""
    r4 = session.reps[3]
    t_silent = 0.5 * (r4.t_start + r4.t_end)
    thigh = ids(session)["thigh"]
    injected = drop(session.notifications, lambda _i, n: n.sensor_id == thigh and n.t_host_s > t_silent)
    out = run_batch(session, injected.notifications)
    st = out.stats["thigh"]
    # Packets never received after the last one leave no sequence gap: not counted as lost.
    assert st.packets_lost == 0 and st.gaps == 0
    assert out.stats["pelvis"].samples == out.stats["pelvis"].packets_received * session.sensors["pelvis"].link.samples_per_packet
    # The angle series ends where both sensors have data: nothing is extrapolated past the thigh.
    assert out.t_s[-1] <= out.samples["thigh"].t_s[-1] + 0.01
    before = untouched(session.reps, [(t_silent, np.inf)], 0.5)
    assert len(before) == 3
    assert_rep_peaks(out.reps, before)
    assert len(out.reps) == 3
    assert any("stream ended" in r.reason for r in out.incomplete)


@pytest.mark.parametrize("segments", [("thigh",), ("pelvis", "thigh")], ids=["thigh", "both"])
def test_disconnect_mid_rep_and_reconnect_3s_later(session: SimulatedSession, segments: tuple[str, ...]) -> None:
    """The link drops in the middle of rep 3 and comes back 3 s later; streaming resumes."""
    r3 = session.reps[2]
    t0 = 0.5 * (r3.t_start + r3.t_end) - 1.5
    t1 = t0 + 3.0
    injected = pause(session.notifications, [ids(session)[s] for s in segments], t0, t1)
    out = run_batch(session, injected.notifications)
    for seg in segments:
        st = out.stats[seg]
        # The firmware produced nothing while disconnected: no seq gap, no reboot, one time gap.
        assert st.packets_lost == 0 and st.resets == 0 and st.inconsistent == 0 and st.gaps == 1
        x = out.samples[seg]
        (i,) = np.flatnonzero(gaps_of(x))
        assert x.t_s[i] - x.t_s[i - 1] == pytest.approx(3.0, abs=0.2)
        check_gaps_not_bridged(out, x.t_s, gaps_of(x))
    # Reps before the disconnect are intact.
    assert_rep_peaks(out.reps, session.reps[:2])
    # The broken rep is not counted: it is reported incomplete, naming the gap.
    assert matching_rep(out.reps, r3.t_start, t0) is None
    assert any("data gap" in r.reason and r.t_start < t0 for r in out.incomplete)
    # Late reps (well after the filters have recovered) are intact again.
    assert_rep_peaks(out.reps, [r for r in session.reps if r.t_start > t1 + 8.0])


@pytest.mark.parametrize("offline", [False, True], ids=["causal", "offline"])
def test_rep_right_after_a_reconnect_is_accurate_or_flagged(session: SimulatedSession, offline: bool) -> None:
    """Rep 4 starts 2.3 s after a 3 s disconnect. With the causal filter the thigh comes back up to 47° off
    (M2 in docs/reliability.md) and never settles near neutral before rep 4, so the detector must not score
    it: it reports the rep as started during a data gap. With the offline filter it is measured correctly."""
    r3, r4 = session.reps[2], session.reps[3]
    t0 = 0.5 * (r3.t_start + r3.t_end) - 1.5
    injected = pause(session.notifications, [ids(session)["thigh"]], t0, t0 + 3.0)
    out = run_batch(session, injected.notifications, offline=offline)
    rep = matching_rep(out.reps, r4.t_start, r4.t_end)
    assert rep is None or rep.peak_internal_rotation == pytest.approx(r4.peak_internal_rotation, abs=PEAK_TOL_DEG)


# -- the live path ------------------------------------------------------------------------------------------


def test_online_path_with_loss_duplicates_and_reordering(session: SimulatedSession) -> None:
    """The live path under 20 % random loss in the drill plus duplicates and reordering: all reps kept."""
    rng = np.random.default_rng(6)
    injected = packet_loss(session.notifications, 0.2, 1.0, rng, t_from_s=session.scenario.drill_start_s)
    dup = duplicate(injected.notifications, 0.05, rng)
    mixed = reorder(dup.notifications, 0.05, rng)
    out = run_online(session, mixed.notifications)
    for seg, sid in ids(session).items():
        st = out.stats[seg]
        assert st.duplicates == dup.count[sid] and st.late == 0
        assert st.packets_lost == len(inner_losses(session, seg, injected.dropped_seq.get(sid, set())))
        assert np.all(np.diff(out.samples[seg].t_s) > 0)
    assert np.all(np.diff(out.t_s) > 0)
    err = rotation_error_deg(session, out.t_s, out.hip_rotation_deg)
    ok = drill_mask(session, out.t_s) & ~out.gap & np.isfinite(err)
    assert rms(err[ok]) < ROT_RMS_TOL_DEG
    assert len(out.reps) == 6
    assert_rep_peaks(out.reps, session.reps)


def test_online_path_with_burst_loss_keeps_angles_outside_gaps(session: SimulatedSession) -> None:
    injected = packet_loss(session.notifications, 0.2, 2.0, np.random.default_rng(6), t_from_s=session.scenario.drill_start_s)
    out = run_online(session, injected.notifications)
    err = rotation_error_deg(session, out.t_s, out.hip_rotation_deg)
    ok = drill_mask(session, out.t_s) & ~out.gap & np.isfinite(err)
    assert np.max(np.abs(err[ok])) < 5.0


def test_online_path_disconnect_mid_rep(session: SimulatedSession) -> None:
    """Live: the thigh drops out for 3 s in rep 3. Frames keep coming and say so, rep 3 is not counted."""
    r3 = session.reps[2]
    t0 = 0.5 * (r3.t_start + r3.t_end) - 1.5
    t1 = t0 + 3.0
    injected = pause(session.notifications, [ids(session)["thigh"]], t0, t1)
    out = run_online(session, injected.notifications)
    assert out.stats["thigh"].resets == 0 and out.stats["thigh"].gaps == 1
    inside = (out.t_s > t0 + 0.1) & (out.t_s < t1 - 0.1)
    assert inside.sum() > 250 and out.gap[inside].all()
    assert out.t_s[-1] > session.scenario.drill_end_s - 1.0  # streaming resumed to the end
    assert_rep_peaks(out.reps, session.reps[:2])
    assert_rep_peaks(out.reps, [r for r in session.reps if r.t_start > t1 + 8.0])
    assert_every_rep_accounted_for(out, session.reps)


def test_online_path_does_not_bridge_a_3s_disconnect(session: SimulatedSession) -> None:
    r3 = session.reps[2]
    t0 = 0.5 * (r3.t_start + r3.t_end) - 1.5
    injected = pause(session.notifications, [ids(session)["thigh"]], t0, t0 + 3.0)
    out = run_online(session, injected.notifications)
    inside = (out.t_s > t0 + 0.3) & (out.t_s < t0 + 2.7)
    assert np.isnan(out.hip_rotation_deg[inside]).all()
    assert matching_rep(out.reps, r3.t_start, t0) is None
    assert any("data gap" in r.reason for r in out.incomplete)


def test_online_pipeline_does_not_depend_on_how_blocks_are_cut(session: SimulatedSession) -> None:
    injected = packet_loss(session.notifications, 0.2, 1.0, np.random.default_rng(6), t_from_s=session.scenario.drill_start_s)
    split = run_online(session, injected.notifications)
    from sensorhub.ingest import concat_samples
    from sensorhub.motion.pipeline import OnlinePipeline

    # The same samples, in blocks of about one second each (gaps inside blocks).
    pipe = OnlinePipeline(session.config.side, sensor_rates_hz={k: s.rate_hz for k, s in session.sensors.items()})
    frames = []
    streams = {seg: split.samples[seg] for seg in ("pelvis", "thigh")}
    cuts = np.arange(0.0, session.scenario.duration_s + 1.0, 1.0)
    for a, b in itertools.pairwise(cuts):
        for seg, x in streams.items():
            m = (x.t_s >= a) & (x.t_s < b)
            if m.any():
                block = concat_samples([type(x)(x.t_s[m], x.acc_m_s2[m], x.gyr_rad_s[m],
                                                None if x.mag_uT is None else x.mag_uT[m], gaps_of(x)[m])])
                frames += pipe.push(seg, block)
    rot = np.array([f.hip_rotation_deg for f in frames])
    t = np.array([f.t_s for f in frames])
    common = np.intersect1d(np.round(t, 6), np.round(split.t_s, 6))
    a_rot = rot[np.isin(np.round(t, 6), common)]
    b_rot = split.hip_rotation_deg[np.isin(np.round(split.t_s, 6), common)]
    ok = np.isfinite(a_rot) & np.isfinite(b_rot)
    assert np.max(np.abs(a_rot[ok] - b_rot[ok])) < 1.0


def test_online_path_sensor_goes_silent(session: SimulatedSession) -> None:
    """Live: the thigh stops for good in rep 4. Frames stop with it (nothing held or extrapolated), nothing raises."""
    r4 = session.reps[3]
    t_silent = 0.5 * (r4.t_start + r4.t_end)
    thigh = ids(session)["thigh"]
    injected = drop(session.notifications, lambda _i, n: n.sensor_id == thigh and n.t_host_s > t_silent)
    out = run_online(session, injected.notifications)
    assert out.t_s[-1] <= out.samples["thigh"].t_s[-1] + 0.01
    assert out.samples["pelvis"].t_s[-1] > session.scenario.drill_end_s - 1.0  # the pelvis kept streaming
    assert_rep_peaks(out.reps, session.reps[:3])
    assert len(out.reps) == 3
    assert any("stream ended" in r.reason for r in out.incomplete)


def test_online_path_sensor_reboot(session: SimulatedSession) -> None:
    """Live: the thigh reboots in rep 3 (1.5 s down). The stream re-anchors and frames resume, nothing raises."""
    r3 = session.reps[2]
    t_boot = 0.5 * (r3.t_start + r3.t_end)
    injected = reboot(session.notifications, ids(session)["thigh"], t_boot, 1.5, np.random.default_rng(5))
    out = run_online(session, injected.notifications)
    st = out.stats["thigh"]
    assert st.resets == 1 and st.inconsistent == 0 and st.packets_lost == 0
    assert np.all(np.diff(out.samples["thigh"].t_s) > 0) and np.all(np.diff(out.t_s) > 0)
    assert out.gap[(out.t_s > t_boot + 0.1) & (out.t_s < t_boot + 1.4)].all()
    assert out.t_s[-1] > session.scenario.drill_end_s - 1.0
    assert_rep_peaks(out.reps, session.reps[:2])
    assert_rep_peaks(out.reps, [r for r in session.reps if r.t_start > t_boot + 1.5 + 8.0])


# -- the same faults with 6-axis sensors (no magnetometer: heading from the gyroscopes alone) ---------------


@pytest.fixture(scope="module")
def session_6axis() -> SimulatedSession:
    return simulate(SimConfig(seed=5, reps=6, compensation_reps=(3,), no_mag=True))


SIX_AXIS_CASES = {
    "reference": lambda s: test_fault_free_reference_is_accurate(s, run_batch(s, s.notifications)),
    "random loss": lambda s: test_20_percent_loss_during_the_drill(s, 1.0),
    "random loss, peaks (offline filter)": lambda s: test_reps_without_a_long_gap_keep_their_peaks_under_random_loss(s, True),
    "corrupted": test_corrupted_and_truncated_notifications_are_counted_as_malformed,
    "reboot": lambda s: test_sensor_reboot_mid_rep_starts_a_new_clock_epoch(s, run_batch(s, s.notifications)),
    "silent": test_a_sensor_that_goes_silent_leaves_nan_angles_not_held_values,
    "disconnect": lambda s: test_disconnect_mid_rep_and_reconnect_3s_later(s, ("thigh",)),
    "live, loss + duplicates + reordering": test_online_path_with_loss_duplicates_and_reordering,
    "live, disconnect": test_online_path_disconnect_mid_rep,
    # M5 and the causal 6-axis reconnect (fixed by the batch causal filter's restart after long gaps,
    # pipeline.BATCH_CAUSAL_RESTART): 20 % burst loss used to leave the hip rotation up to 33° off with 1 of
    # 6 reps counted; the rep 2.3 s after a 3 s disconnect had a wrong internal peak.
    "burst loss": lambda s: test_20_percent_loss_during_the_drill(s, 4.0),
    "rep after a reconnect (causal filter)": lambda s: test_rep_right_after_a_reconnect_is_accurate_or_flagged(s, False),
}
SIX_AXIS_OPEN: dict[str, tuple[Callable[[SimulatedSession], None], str]] = {}


@pytest.mark.parametrize("case", [
    *SIX_AXIS_CASES,
    *(pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=reason)) for name, (_, reason) in SIX_AXIS_OPEN.items()),
])
def test_6axis_sensors(session_6axis: SimulatedSession, case: str) -> None:
    """The main faults again with sensors that have no magnetometer (common: XIAO nRF52840 Sense, M5StickC)."""
    run = SIX_AXIS_CASES[case] if case in SIX_AXIS_CASES else SIX_AXIS_OPEN[case][0]
    run(session_6axis)
