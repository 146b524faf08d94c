"""Custom actions for tests/fixtures/rasa-project, served by rasa-sdk.

Start from tests/python (the package name is ``actions``):

    python -m rasa_sdk --actions actions --port 5055
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher


class ActionSubmitFeedback(Action):
    """Runs after feedback_form is complete (rule "Submit the feedback form")."""

    def name(self) -> Text:
        return "action_submit_feedback"

    def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
    ) -> List[Dict[Text, Any]]:
        name = tracker.get_slot("feedback_name")
        rating = tracker.get_slot("feedback_rating")
        dispatcher.utter_message(text=f"Thanks {name}, you rated us {rating}.")
        # feedback_done drives utter_goodbye's conditional variation and the
        # "Feedback was already given" rule; the rating is cleared.
        return [SlotSet("feedback_done", True), SlotSet("feedback_rating", None)]
