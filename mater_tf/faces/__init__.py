"""Faces: MTCNN detection on downscaled frames, one person tracked across frames
(`face_tracker`, `face_track`, `detection_schedule`), crops (`crops`)."""

from mater_tf.faces.crops import crop_boxes, crop_faces
from mater_tf.faces.detection_schedule import MIN_BRIDGE_IOU, bridge, detection_frames
from mater_tf.faces.face_track import MIN_TRACK_IOU, FaceTrack, follow_one_face, iou
from mater_tf.faces.face_tracker import DETECT_EVERY, DETECT_SIDE, ONET_SIZE, FaceTracker

__all__ = [
    "DETECT_EVERY",
    "DETECT_SIDE",
    "MIN_BRIDGE_IOU",
    "MIN_TRACK_IOU",
    "ONET_SIZE",
    "FaceTrack",
    "FaceTracker",
    "bridge",
    "crop_boxes",
    "crop_faces",
    "detection_frames",
    "follow_one_face",
    "iou",
]
