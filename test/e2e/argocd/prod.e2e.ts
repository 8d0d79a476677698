// Overlay prod under Argo CD: support/overlay-stories.ts holds the stories every overlay runs.
import { overlayStories } from './support/overlay-stories.js';

overlayStories('prod');
