"""Face detection and tracking on the real CREMA-D clips; tracking logic by hand."""

import numpy as np
import pytest

from mater_tf.faces import FaceTracker, crop_faces, follow_one_face, iou
from mater_tf.media import decode_video


def test_iou_by_hand():
    assert iou([0, 0, 10, 10], [[0, 0, 10, 10]])[0] == pytest.approx(1.0)
    assert iou([0, 0, 10, 10], [[5, 0, 10, 10]])[0] == pytest.approx(50 / 150)
    assert iou([0, 0, 10, 10], [[20, 20, 5, 5]])[0] == 0.0


def test_one_person_is_followed_and_gaps_stay_gaps():
    person, other = [100, 100, 50, 60], [300, 90, 70, 80]
    detections = [
        [person, [10, 10, 20, 20]],  # the larger face starts the track
        [other, [104, 101, 50, 60]],  # the followed person moved a little
        [],  # nobody found: no stale box
        [other],  # only someone else: not our person
        [[108, 103, 50, 60]],
    ]
    track = follow_one_face(detections)
    assert track.found.tolist() == [True, True, False, False, True]
    np.testing.assert_array_equal(track.boxes[1], [104, 101, 50, 60])
    np.testing.assert_array_equal(track.boxes[2], 0)
    assert track.found_rate == pytest.approx(0.6)


def test_a_track_read_in_pieces_goes_on_from_its_last_box():
    person, other = [100, 100, 50, 60], [300, 90, 70, 80]
    detections = [[person], [[104, 101, 50, 60]], [], [other, [108, 103, 50, 60]], [other]]
    first = follow_one_face(detections[:2])
    np.testing.assert_array_equal(first.last, [104, 101, 50, 60])
    rest = follow_one_face(detections[2:], last=first.last)
    # Without the last box, the larger stranger would start a new track in the second piece.
    assert rest.found.tolist() == [False, True, False]
    np.testing.assert_array_equal(rest.boxes[1], [108, 103, 50, 60])
    assert follow_one_face(detections[2:]).boxes[1].tolist() == other


def test_crops_are_square_and_centred():
    frames = np.zeros((1, 100, 200, 3), np.uint8)
    frames[0, 40:60, 90:110] = 255  # a white square
    crops = crop_faces(frames, np.array([[90, 40, 20, 20]], np.float32), size=32, margin=0.0)
    assert crops.shape == (1, 32, 32, 3)
    assert crops[0, 4:28, 4:28].min() > 200


@pytest.fixture(scope="module")
def tracker():
    return FaceTracker()


@pytest.mark.slow
def test_face_found_in_nearly_every_frame_of_the_cremad_clips(shared_dir, tracker):
    rates = {}
    for path in sorted((shared_dir / "data" / "CREMA-D" / "VideoFlash").glob("*.flv")):
        video = decode_video(path)
        track = tracker.track(video.frames)
        rates[path.name] = track.found_rate
        found = track.boxes[track.found]
        # One person: the box barely moves (a talking head in a fixed camera).
        assert np.ptp(found[:, 0]) < 60 and np.ptp(found[:, 1]) < 60, path.name
    assert len(rates) == 6
    assert min(rates.values()) >= 0.95, rates


def test_no_face_in_a_blank_frame(tracker):
    track = tracker.track(np.full((2, 120, 160, 3), 128, np.uint8))
    assert not track.found.any()
